import { createPulseClient, type PresenceEvent, type PulseClient } from '@pulse/client';
import { type DemoServer, startDemoServer } from '@pulse/server/demo';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp, launchBrowser } from './harness.js';

// Issue 16: the tabs of one user in one browser share one WebSocket. A real Pulse node serves the
// built app; Chromium's pages of one context are the tabs (same origin, same storage, same locks).

// NOTE: counts, in each tab, the notification events it accepted over the tab channel: replies to
// this tab from the leader it follows at that moment (the last `leader` announcement, until that
// leader's `bye`), the same rule the client applies. A doubled delivery then shows even though the
// UI deduplicates notifications by id. A late reply of a previous leader is dropped by the client
// (its operation was re-sent to the new leader), so it is not counted here either.
const countChannelDeliveries = () => {
  const seen: Record<string, number> = {};
  (window as unknown as { __deliveries: Record<string, number> }).__deliveries = seen;
  const Native = window.BroadcastChannel;
  window.BroadcastChannel = class extends Native {
    private self: string | null = null;
    private leader: string | null = null;
    constructor(name: string) {
      super(name);
      this.addEventListener('message', (event: MessageEvent) => {
        const msg = event.data as {
          t?: string;
          from?: string;
          to?: string;
          envelope?: { result?: { data?: unknown } };
        };
        if (msg?.t === 'leader') this.leader = msg.from ?? null;
        if (msg?.t === 'bye' && msg.from === this.leader) this.leader = null;
        if (msg?.t !== 'res' || msg.to !== this.self || msg.from !== this.leader) return;
        const text = JSON.stringify(msg.envelope?.result?.data ?? null);
        const match = /"title":"(burst-[^"]+)"/.exec(text);
        if (match) seen[match[1]!] = (seen[match[1]!] ?? 0) + 1;
      });
    }
    override postMessage(message: unknown): void {
      const msg = message as { t?: string; from?: string };
      if (msg?.t === 'hello') this.self = msg.from ?? null;
      // A tab that leads gets nothing over the channel: its own events come from its socket.
      if (msg?.t === 'leader') this.leader = null;
      super.postMessage(message);
    }
  };
};

describe('tabs share one socket (Chromium)', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let demo: DemoServer;
  let browser: Browser & AsyncDisposable;
  const contexts: BrowserContext[] = [];
  /** Page errors and console errors of every tab (the main test asserts there are none). */
  const errors: string[] = [];
  const watchErrors = (page: Page) => {
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
  };

  const connections = () => demo.server.stats().transport;
  /** The server's `notifications.onFeed` subscriptions: one per tab, whichever socket carries it. */
  const feeds = () => connections().subscriptionsByPath['notifications.onFeed'] ?? 0;

  /** A context with `count` tabs signed in as `userId` of acme (the first tab signs in, the others reuse the session). */
  async function openTabs(
    userId: string,
    count: number,
    query = '',
  ): Promise<{ context: BrowserContext; tabs: Page[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    await context.addInitScript(countChannelDeliveries);
    const first = await context.newPage();
    watchErrors(first);
    await first.goto(`${demo.server.url}/${query}`);
    await first.getByTestId(`signin-${userId}-acme`).click();
    await waitSignedIn(first, userId);
    const tabs = [first];
    for (let i = 1; i < count; i += 1) tabs.push(await openTab(context, userId, query));
    return { context, tabs };
  }

  async function openTab(context: BrowserContext, userId: string, query = ''): Promise<Page> {
    const page = await context.newPage();
    watchErrors(page);
    await page.goto(`${demo.server.url}/${query}`);
    await waitSignedIn(page, userId);
    return page;
  }

  async function waitSignedIn(page: Page, userId: string) {
    await page.locator(`.shell[data-user="${userId}"]`).waitFor();
    await page.locator('[data-testid="connection"]', { hasText: 'connected' }).waitFor();
  }

  const roleOf = (page: Page) => page.getByTestId('connection').getAttribute('data-role');
  const roles = async (tabs: Page[]) => (await Promise.all(tabs.map(roleOf))).sort();
  const badge = async (page: Page) =>
    (await page.getByTestId('bell-badge').count()) === 0
      ? 0
      : Number(await page.getByTestId('bell-badge').textContent());
  const deliveries = (page: Page) =>
    page.evaluate(() => (window as unknown as { __deliveries: Record<string, number> }).__deliveries);

  const notify = (userId: string, title: string) =>
    demo.server.caller.notifications.send({
      workspaceId: 'acme',
      userId,
      type: 'mention',
      title,
      data: { platform: 'other', author: 'Alice Admin', text: title },
    });

  /** A Node client of another user watching acme's presence (Node never shares). */
  async function presenceObserver(
    userId: string,
  ): Promise<{ client: PulseClient; events: PresenceEvent[]; statusOf(user: string): string | null }> {
    const token = demo.tokens.find((t) => t.sub === userId)!.token;
    const client = createPulseClient({ url: demo.server.url, token, WebSocket });
    const events: PresenceEvent[] = [];
    const status = new Map<string, string>();
    client.trpc.presence.onChange.subscribe(
      { workspaceId: 'acme' },
      {
        onData: (event) => {
          events.push(event);
          if (event.type === 'snapshot') for (const u of event.users) status.set(u.userId, u.status);
          else if (event.type === 'leave') status.delete(event.userId);
          else status.set(event.user.userId, event.user.status);
        },
      },
    );
    return { client, events, statusOf: (user) => status.get(user) ?? null };
  }

  beforeAll(async () => {
    app = await buildApp();
    demo = await startDemoServer({
      sqliteFile: ':memory:',
      staticDir: app.dir,
      generator: false,
      // NOTE: the default presence grace (PULSE_PRESENCE_GRACE_MS, 5 s) is what covers a hand-over.
      config: { port: 0, host: '127.0.0.1', logLevel: 'silent', presence: { graceMs: 5_000, ttlMs: 30_000 } },
    });
    browser = await launchBrowser();
  });

  // Every test leaves no tab behind, even when it fails half-way (the next one counts sockets).
  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close().catch(() => {});
    await expect.poll(() => connections().connections).toBe(0);
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close({ graceMs: 0 });
    await app?.[Symbol.asyncDispose]();
  });

  it('five tabs of one user: one socket, one leader, a notification in every badge exactly once; the leader closes: another leads, a burst across the hand-over reaches every tab once', async () => {
    const observer = await presenceObserver('carol');
    try {
      const { context, tabs } = await openTabs('bob', 5);
      await expect
        .poll(() => roles(tabs))
        .toEqual(['follower', 'follower', 'follower', 'follower', 'leader']);
      // Carol's Node client is the other connection.
      await expect.poll(() => connections()).toMatchObject({ connections: 2, users: 2 });
      await expect.poll(() => observer.statusOf('bob')).toBe('online');
      // Every tab's feed subscription is on the server (a notification sent before a tab subscribed
      // is not replayed to it: a stream without a resume point starts live).
      await expect.poll(() => feeds()).toBe(5);

      await notify('bob', 'burst-first');
      for (const tab of tabs) await expect.poll(() => badge(tab)).toBe(1);

      // Close the leader while a burst is on its way.
      const leaderIndex = (await Promise.all(tabs.map(roleOf))).indexOf('leader');
      const leader = tabs[leaderIndex]!;
      const rest = tabs.filter((t) => t !== leader);
      const burst = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
      const sending = (async () => {
        for (const title of burst) await notify('bob', title);
      })();
      await leader.close();
      await sending;
      await expect.poll(() => roles(rest)).toEqual(['follower', 'follower', 'follower', 'leader']);
      await expect.poll(() => connections()).toMatchObject({ connections: 2, users: 2 });
      await notify('bob', 'burst-after');
      for (const tab of rest) {
        await expect.poll(() => badge(tab)).toBe(1 + burst.length + 1);
        // The notifications page lists each of them once.
        await tab.evaluate(() => {
          window.location.hash = '#/notifications';
        });
        const list = tab.getByTestId('notification-list');
        await list.waitFor();
        for (const title of ['burst-first', ...burst, 'burst-after'])
          await expect
            .poll(() => list.getByTestId('notification').filter({ hasText: title }).count())
            .toBe(1);
      }
      // No tab accepted any event twice over the tab channel (each counts its own).
      const accepted = await Promise.all(rest.map(deliveries));
      for (const counts of accepted) for (const n of Object.values(counts)) expect(n).toBe(1);
      // The followers got the burst over the channel (the current leader got it from its socket).
      expect(accepted.filter((counts) => Object.keys(counts).length > 0).length).toBeGreaterThanOrEqual(3);
      // Carol never saw Bob leave: one presence across the hand-over.
      expect(observer.events.filter((e) => e.type === 'leave' && e.userId === 'bob')).toEqual([]);
      expect(observer.statusOf('bob')).not.toBeNull();
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      await observer.client.close();
    }
  });

  it('presence: the user is away only when every tab is hidden, and stays one presence', async () => {
    const observer = await presenceObserver('carol');
    try {
      const { context, tabs } = await openTabs('bob', 3);
      await expect.poll(() => observer.statusOf('bob')).toBe('online');
      const setVisibility = (page: Page, state: 'hidden' | 'visible') =>
        page.evaluate((value) => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
          document.dispatchEvent(new Event('visibilitychange'));
        }, state);
      await setVisibility(tabs[0]!, 'hidden');
      await setVisibility(tabs[1]!, 'hidden');
      // A hidden tab that reports something (here: another page) still says online: tab 3 is visible.
      await tabs[0]!.evaluate(() => {
        window.location.hash = '#/inbox';
      });
      const bobNow = async () => {
        const me = await demo.server.publish.getUserPresence('acme', 'bob');
        return { page: me?.page ?? null, status: me?.status ?? null };
      };
      await expect.poll(async () => (await bobNow()).page).toContain('inbox');
      expect(await bobNow()).toMatchObject({ status: 'online' });
      expect(observer.statusOf('bob')).toBe('online');
      await setVisibility(tabs[2]!, 'hidden');
      await expect.poll(() => observer.statusOf('bob')).toBe('away');
      await setVisibility(tabs[1]!, 'visible');
      await expect.poll(() => observer.statusOf('bob')).toBe('online');
      await context.close();
      expect(
        observer.events.filter((e) => e.type === 'join' && e.user.userId === 'bob').length,
      ).toBeLessThanOrEqual(1);
    } finally {
      await observer.client.close();
    }
  });

  it('two users in two contexts: two sockets, nothing crosses; sign-out and sign-in as someone else in one tab: two leaders', async () => {
    // Alice's Node client watches acme's presence: one more connection and user in every count.
    const observer = await presenceObserver('alice');
    try {
      const bob = await openTabs('bob', 2);
      const carol = await openTabs('carol', 2);
      await expect.poll(() => connections()).toMatchObject({ connections: 3, users: 3 });
      await expect.poll(() => feeds()).toBe(4);
      await notify('carol', 'for-carol-1');
      for (const tab of carol.tabs) await expect.poll(() => badge(tab)).toBe(1);
      for (const tab of bob.tabs) await tab.getByTestId('bell').click();
      for (const tab of bob.tabs)
        expect(await tab.getByTestId('bell-popover').textContent()).not.toContain('for-carol-1');
      await carol.context.close();
      await expect.poll(() => connections()).toMatchObject({ connections: 2, users: 2 });

      // In Bob's second tab: sign out, sign in as Carol. That tab gets its own leader (Carol's group);
      // Bob's first tab keeps Bob's socket.
      const [bobTab, switched] = bob.tabs as [Page, Page];
      await switched.getByTitle('Sign out').click();
      await switched.getByTestId('signin-carol-acme').click();
      await waitSignedIn(switched, 'carol');
      await expect.poll(() => Promise.all([roleOf(bobTab), roleOf(switched)])).toEqual(['leader', 'leader']);
      await expect.poll(() => connections()).toMatchObject({ connections: 3, users: 3 });
      await expect.poll(() => feeds()).toBe(2);
      await notify('bob', 'for-bob-2');
      await notify('carol', 'for-carol-2');
      await switched.getByTestId('bell').click();
      await switched.getByTestId('bell-popover').getByText('for-carol-2').waitFor();
      expect(await switched.getByTestId('bell-popover').textContent()).not.toContain('for-bob-2');
      await bobTab.keyboard.press('Escape');
      await bobTab.getByTestId('bell').click();
      await bobTab.getByTestId('bell-popover').getByText('for-bob-2').waitFor();
      expect(await bobTab.getByTestId('bell-popover').textContent()).not.toContain('for-carol-2');
      // The tab that signed out let go of Bob's presence, but Bob's other tab still shows acme: no leave.
      await expect.poll(() => observer.statusOf('carol')).toBe('online');
      expect(observer.events.filter((e) => e.type === 'leave' && e.userId === 'bob')).toEqual([]);
      expect(observer.statusOf('bob')).toBe('online');
      await bob.context.close();
    } finally {
      await observer.client.close();
    }
  });

  it('a crashed follower says no goodbye: the leader still ends its subscriptions', async () => {
    const { context, tabs } = await openTabs('bob', 1);
    const subscriptions = () => connections().subscriptions;
    await expect.poll(subscriptions).toBeGreaterThan(0);
    // Let the leader tab's subscriptions settle, then count them.
    let alone = subscriptions();
    await expect
      .poll(() => {
        const now = subscriptions();
        const settled = now === alone;
        alone = now;
        return settled;
      })
      .toBe(true);
    const follower = await openTab(context, 'bob');
    await expect.poll(() => roleOf(follower)).toBe('follower');
    await expect.poll(subscriptions).toBeGreaterThan(alone);
    const cdp = await context.newCDPSession(follower);
    void cdp.send('Page.crash').catch(() => {});
    await expect.poll(subscriptions).toBe(alone);
    expect(connections()).toMatchObject({ connections: 1, users: 1 });
    expect(await roleOf(tabs[0]!)).toBe('leader');
    await context.close();
  });

  it('sharing turned off: five tabs, five sockets, every tab solo', async () => {
    const { context, tabs } = await openTabs('bob', 5, '?shareTabs=off');
    await expect.poll(() => roles(tabs)).toEqual(['solo', 'solo', 'solo', 'solo', 'solo']);
    await expect.poll(() => connections()).toMatchObject({ connections: 5, users: 1 });
    await context.close();
  });

  // Hand-over times and the leader's cost per follower event: test/measure-tabs.ts (a script, not a test).
});
