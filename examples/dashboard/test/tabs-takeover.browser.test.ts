import { mintToken } from '@pulse/server';
import { type DemoServer, startDemoServer } from '@pulse/server/demo';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, launchBrowser } from './harness.js';

// Issue 16, the hard cases of sharing one socket across tabs: a leader tab the browser freezes
// (it keeps the Web Lock, so only its silence tells), and a token refreshed in a follower tab.

// NOTE: counts, in each tab, the notification events it accepted over the tab channel from the
// leader it follows at that moment (the last `leader` announcement), as in tabs.browser.test.ts.
const countChannelDeliveries = () => {
  const seen: Record<string, number> = {};
  (window as unknown as { __deliveries: Record<string, number> }).__deliveries = seen;
  const Native = window.BroadcastChannel;
  window.BroadcastChannel = class extends Native {
    private self: string | null = null;
    private leader: string | null = null;
    private since = 0;
    constructor(name: string) {
      super(name);
      this.addEventListener('message', (event: MessageEvent) => {
        const msg = event.data as {
          t?: string;
          from?: string;
          to?: string;
          since?: number;
          envelope?: { result?: { data?: unknown } };
        };
        // The client's rule: the claim of the later grant wins.
        if (msg?.t === 'leader' && (this.leader === null || (msg.since ?? 0) >= this.since)) {
          this.leader = msg.from ?? null;
          this.since = msg.since ?? 0;
        }
        if (msg?.t === 'bye' && msg.from === this.leader) this.leader = null;
        if (msg?.t !== 'res' || msg.to !== this.self || msg.from !== this.leader) return;
        const text = JSON.stringify(msg.envelope?.result?.data ?? null);
        const match = /"title":"(frozen-[^"]+)"/.exec(text);
        if (match) seen[match[1]!] = (seen[match[1]!] ?? 0) + 1;
      });
    }
    override postMessage(message: unknown): void {
      const msg = message as { t?: string; from?: string; since?: number };
      if (msg?.t === 'hello') {
        this.self = msg.from ?? null;
        // A tab that says hello again (it stepped down) follows whoever answers.
        this.leader = null;
        this.since = 0;
      }
      // A tab that leads gets nothing over the channel: its own events come from its socket.
      if (msg?.t === 'leader') {
        this.leader = null;
        this.since = msg.since ?? 0;
      }
      super.postMessage(message);
    }
  };
};

describe('tab take-over and token relay (Chromium)', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let demo: DemoServer;
  let browser: Browser & AsyncDisposable;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];
  const watchErrors = (page: Page) => {
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
  };
  const connections = () => demo.server.stats().transport;
  /** The server's `notifications.onFeed` subscriptions: one per tab (a stream without a resume point starts live). */
  const feeds = () => connections().subscriptionsByPath['notifications.onFeed'] ?? 0;

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    await context.addInitScript(countChannelDeliveries);
    return context;
  }

  async function openTab(context: BrowserContext, userId: string, signIn: boolean): Promise<Page> {
    const page = await context.newPage();
    watchErrors(page);
    await page.goto(`${demo.server.url}/`);
    if (signIn) await page.getByTestId(`signin-${userId}-acme`).click();
    await page.locator(`.shell[data-user="${userId}"]`).waitFor();
    await page.locator('[data-testid="connection"]', { hasText: 'connected' }).waitFor();
    return page;
  }

  async function openTabs(userId: string, count: number) {
    const context = await newContext();
    const tabs = [await openTab(context, userId, true)];
    for (let i = 1; i < count; i += 1) tabs.push(await openTab(context, userId, false));
    return { context, tabs };
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
  const isLeading = (page: Page) =>
    page
      .locator('[data-testid="connection"][data-role="leader"]', { hasText: 'connected' })
      .count()
      .then((n) => n === 1);

  /** Every title listed exactly once on the tab's notifications page. */
  async function listsEachOnce(tab: Page, titles: string[]) {
    await tab.evaluate(() => {
      window.location.hash = '#/notifications';
    });
    const list = tab.getByTestId('notification-list');
    await list.waitFor();
    for (const title of titles)
      await expect.poll(() => list.getByTestId('notification').filter({ hasText: title }).count()).toBe(1);
  }

  beforeAll(async () => {
    app = await buildApp();
    demo = await startDemoServer({
      sqliteFile: ':memory:',
      staticDir: app.dir,
      generator: false,
      config: { port: 0, host: '127.0.0.1', logLevel: 'silent', presence: { graceMs: 5_000, ttlMs: 30_000 } },
    });
    browser = await launchBrowser();
  });

  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close().catch(() => {});
    await expect.poll(() => connections().connections).toBe(0);
    errors.length = 0;
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close({ graceMs: 0 });
    await app?.[Symbol.asyncDispose]();
  });

  it('the leader tab freezes (its main thread stops): another tab takes the lead and connects, every tab counts each notification once, the thawed tab follows without using its old socket', async () => {
    const { tabs } = await openTabs('bob', 3);
    await expect.poll(() => roles(tabs)).toEqual(['follower', 'follower', 'leader']);
    await expect.poll(() => connections()).toMatchObject({ connections: 1, users: 1 });
    await expect.poll(() => feeds()).toBe(3);
    await notify('bob', 'frozen-first');
    for (const tab of tabs) await expect.poll(() => badge(tab)).toBe(1);

    const leader = tabs[(await Promise.all(tabs.map(roleOf))).indexOf('leader')]!;
    const rest = tabs.filter((t) => t !== leader);
    // What the frozen tab sends on its socket (Playwright sees frames in the network layer).
    const sentAfterThaw: string[] = [];
    let thawed = false;
    leader.on('websocket', (ws) =>
      ws.on('framesent', (frame) => {
        if (thawed) sentAfterThaw.push(String(frame.payload));
      }),
    );
    // NOTE: freezing as the browser does it (`Page.setWebLifecycleState` 'frozen') does nothing to a
    // visible page, and headless Chromium shows every page (its timers kept running, no `freeze`
    // event). Pausing the tab's main thread in the debugger stops it the same way: no timer, no
    // channel message, no lock callback runs, while it keeps its Web Lock and its open socket.
    const cdp: CDPSession = await leader.context().newCDPSession(leader);
    await cdp.send('Debugger.enable');
    const paused = new Promise<void>((resolve) => cdp.once('Debugger.paused', () => resolve()));
    await cdp.send('Debugger.pause');
    // It pauses at the next script it runs (its heartbeat timer runs every second).
    await paused;

    const during = Array.from({ length: 6 }, (_, i) => `frozen-${i}`);
    for (const title of during.slice(0, 3)) await notify('bob', title);
    // Another tab hears no heartbeat, takes the lock and connects.
    await expect.poll(async () => (await Promise.all(rest.map(isLeading))).filter(Boolean).length).toBe(1);
    for (const title of during.slice(3)) await notify('bob', title);
    for (const tab of rest) await expect.poll(() => badge(tab)).toBe(1 + during.length);
    // The frozen tab's socket is still open (the browser keeps it): two sockets until it thaws.
    expect(connections()).toMatchObject({ connections: 2, users: 1 });

    thawed = true;
    await cdp.send('Debugger.resume');
    await expect.poll(() => roleOf(leader)).toBe('follower');
    await expect.poll(() => connections()).toMatchObject({ connections: 1, users: 1 });
    await expect.poll(() => feeds()).toBe(3);
    await notify('bob', 'frozen-after');
    const all = ['frozen-first', ...during, 'frozen-after'];
    const thawedFirst = [leader, ...rest];
    await expect
      .poll(async () => ({
        badges: await Promise.all(thawedFirst.map(badge)),
        roles: await Promise.all(thawedFirst.map(roleOf)),
        deliveries: await Promise.all(thawedFirst.map(deliveries)),
      }))
      .toMatchObject({ badges: thawedFirst.map(() => all.length) });
    for (const tab of tabs) await listsEachOnce(tab, all);
    // No tab accepted any event twice over the tab channel.
    for (const counts of await Promise.all(tabs.map(deliveries)))
      for (const n of Object.values(counts)) expect(n).toBe(1);
    // The thawed tab sent nothing on its old socket (at most a keep-alive ping tRPC had due).
    expect(sentAfterThaw.filter((frame) => frame !== 'PING' && frame !== 'PONG')).toEqual([]);
    expect(await roles(tabs)).toEqual(['follower', 'follower', 'leader']);
    expect(errors).toEqual([]);
  });

  it("a follower tab's refreshed token reaches the leader: its socket reconnects with it when the server ends its own token's life, and no second socket opens", async () => {
    const jwt = demo.server.config.jwt;
    const bob = demo.tokens.find((t) => t.sub === 'bob')!;
    const mint = (expiresInSec: number) =>
      mintToken(jwt, { sub: 'bob', name: bob.name, workspaces: bob.workspaces, expiresInSec });
    // The leader tab's token source only ever has a token that ends soon; the follower's has a
    // refreshed one (later exp), as if it had just refreshed the session.
    const shortLived = await mint(10);
    const refreshed = await mint(3_600);
    const expiresAt = (JSON.parse(atob(shortLived.split('.')[1]!)) as { exp: number }).exp * 1000;
    const context = await newContext();
    // NOTE: answered here (never passed on to the server): the demo cast with Bob's token swapped.
    const serveToken = async (page: Page, token: string) =>
      page.route('**/demo/tokens', (route) =>
        route.fulfill({
          json: {
            users: demo.tokens.map((user) => (user.sub === 'bob' ? { ...user, token } : user)),
            workspaces: [...new Set(demo.tokens.flatMap((u) => Object.keys(u.workspaces)))].sort(),
          },
        }),
      );
    /** The token of every connectionParams message a tab sent on any socket it opened. */
    const socketTokens = (page: Page) => {
      const sent: string[] = [];
      page.on('websocket', (ws) =>
        ws.on('framesent', (frame) => {
          try {
            const msg = JSON.parse(String(frame.payload)) as { method?: string; data?: { token?: string } };
            if (msg.method === 'connectionParams' && msg.data?.token) sent.push(msg.data.token);
          } catch {
            // not JSON (keep-alive PING): not a token
          }
        }),
      );
      return sent;
    };
    const leaderPage = await context.newPage();
    watchErrors(leaderPage);
    await serveToken(leaderPage, shortLived);
    const leaderSent = socketTokens(leaderPage);
    await leaderPage.goto(`${demo.server.url}/`);
    await leaderPage.getByTestId('signin-bob-acme').click();
    await leaderPage
      .locator('[data-testid="connection"][data-role="leader"]', { hasText: 'connected' })
      .waitFor();
    const followerPage = await context.newPage();
    watchErrors(followerPage);
    await serveToken(followerPage, refreshed);
    const followerSent = socketTokens(followerPage);
    await followerPage.goto(`${demo.server.url}/`);
    await followerPage
      .locator('[data-testid="connection"][data-role="follower"]', { hasText: 'connected' })
      .waitFor();
    expect(leaderSent).toEqual([shortLived]);
    expect(connections()).toMatchObject({ connections: 1, users: 1 });

    // The server closes the leader's socket at its token's exp (4401); the leader reconnects with
    // the later token the follower offered, so the one socket outlives the short-lived token.
    await expect.poll(() => leaderSent.length, { timeout: 30_000 }).toBe(2);
    expect(leaderSent).toEqual([shortLived, refreshed]);
    await leaderPage
      .locator('[data-testid="connection"][data-role="leader"]', { hasText: 'connected' })
      .waitFor();
    await expect.poll(() => Date.now() > expiresAt + 1_000).toBe(true);
    expect(await roleOf(leaderPage)).toBe('leader');
    expect(connections()).toMatchObject({ connections: 1, users: 1 });
    // (Bob's notifications of the other test are still unseen: count from what each tab shows now.)
    await expect.poll(() => feeds()).toBe(2);
    const before = await Promise.all([leaderPage, followerPage].map(badge));
    await notify('bob', 'frozen-token');
    for (const [i, tab] of [leaderPage, followerPage].entries())
      await expect.poll(() => badge(tab)).toBe(before[i]! + 1);
    expect(await roleOf(followerPage)).toBe('follower');
    // The follower never opened a socket of its own.
    expect(followerSent).toEqual([]);
  });
});
