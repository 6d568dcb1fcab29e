import type { DemoServer } from '@pulse/server/demo';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, go, launchBrowser, type SignedIn, screenshot, signIn, startAppServer } from './harness.js';

// Two users of `acme` (Alice admin, Bob member) and one of `globex` (Dave admin), each in their own
// browser context (own storage, own socket), against one real Pulse node serving the built app.
describe('dashboard app in Chromium', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let demo: DemoServer;
  let browser: Browser & AsyncDisposable;
  let alice: SignedIn;
  let bob: SignedIn;
  let dave: SignedIn;
  let acmeConversation: string;

  beforeAll(async () => {
    app = await buildApp();
    demo = await startAppServer(app.dir, { generator: false });
    const { server } = demo;
    // A little history so every screen has something real on it.
    for (const [platform, accountId, count] of [
      ['twitter', 'acme', 48_210],
      ['instagram', 'acme.official', 126_400],
      ['linkedin', 'acme-inc', 18_950],
    ] as const) {
      await server.caller.dashboard.publish({
        workspaceId: 'acme',
        kind: 'followers',
        platform,
        accountId,
        count,
        change: 12,
      });
      await server.caller.dashboard.publish({
        workspaceId: 'acme',
        kind: 'engagement',
        platform,
        accountId,
        likes: Math.round(count * 0.04),
        comments: 210,
        shares: 95,
        rate: 4.2,
      });
    }
    const received = await server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'instagram',
      externalId: 'maya-1',
      contact: { id: 'mayac', name: 'Maya Chen', handle: '@mayac' },
      body: 'Hi! My order #48213 still shows "processing" after 5 days. Any update?',
    });
    acmeConversation = received.conversation.id;
    await server.caller.inbox.receive({
      workspaceId: 'globex',
      platform: 'facebook',
      externalId: 'jonas-1',
      contact: { id: 'jweber', name: 'Jonas Weber', handle: '@jweber' },
      body: 'Do you ship to Norway?',
    });
    browser = await launchBrowser();
    alice = await signIn(browser, server.url, 'alice', 'acme');
    bob = await signIn(browser, server.url, 'bob', 'acme');
    dave = await signIn(browser, server.url, 'dave', 'globex');
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close({ graceMs: 0 });
    await app?.[Symbol.asyncDispose]();
  });

  it('shows each acme user the other online, on which screen, away when hidden; globex sees neither', async () => {
    await go(alice.page, 'team');
    await go(bob.page, 'team');
    await go(dave.page, 'team');
    await alice.page.locator('[data-testid="presence-user"][data-user="bob"]').waitFor();
    await bob.page.locator('[data-testid="presence-user"][data-user="alice"]').waitFor();
    // Presence follows the route: Bob is on the team page, and Alice sees that.
    await expect
      .poll(() => alice.page.locator('[data-testid="presence-user"][data-user="bob"]').textContent())
      .toContain('Team');
    // Bob's tab goes to the background: Alice sees him away; back in front, online again.
    const setVisibility = (state: 'hidden' | 'visible') =>
      bob.page.evaluate((value) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    const bobOnAlicesScreen = alice.page.locator('[data-testid="presence-user"][data-user="bob"]');
    await setVisibility('hidden');
    await expect.poll(() => bobOnAlicesScreen.getAttribute('data-status')).toBe('away');
    await setVisibility('visible');
    await expect.poll(() => bobOnAlicesScreen.getAttribute('data-status')).toBe('online');
    await dave.page.locator('[data-testid="presence-user"][data-user="dave"]').waitFor();
    expect(await dave.page.locator('[data-testid="presence-user"][data-user="alice"]').count()).toBe(0);
    expect(await dave.page.locator('[data-testid="presence-user"][data-user="bob"]').count()).toBe(0);
    await screenshot(alice.page, 'team');
  });

  it('delivers a notification sent from the admin panel to the other user’s bell, not to globex', async () => {
    const title = `Launch review at 3 pm ${Date.now().toString(36)}`;
    await go(alice.page, 'admin');
    await go(bob.page, 'dashboard');
    await go(dave.page, 'dashboard');
    await alice.page.getByTestId('notify-target').selectOption('bob');
    await alice.page.getByTestId('notify-kind').selectOption('mention');
    await alice.page.getByTestId('notify-title').fill(title);
    await alice.page.getByTestId('notify-body').fill('Bring the Q2 numbers, please.');
    await alice.page.getByTestId('notify-send').click();
    await alice.page.getByTestId('notify-sent').waitFor();

    await bob.page.getByTestId('bell-badge').waitFor();
    expect(Number(await bob.page.getByTestId('bell-badge').textContent())).toBeGreaterThanOrEqual(1);
    await bob.page.getByTestId('bell').click();
    const item = bob.page.getByTestId('bell-popover').getByTestId('notification').filter({ hasText: title });
    await item.waitFor();
    await screenshot(bob.page, 'notifications');
    // Opening it marks it read: the badge goes away.
    await item.click();
    await expect.poll(() => bob.page.getByTestId('bell-badge').count()).toBe(0);
    await bob.page.keyboard.press('Escape');
    await bob.page.getByTestId('bell-popover').waitFor({ state: 'detached' });

    // A workspace-wide crisis from the admin panel reaches Bob too and stands out.
    await alice.page.getByTestId('notify-target').selectOption('');
    await alice.page.getByTestId('notify-kind').selectOption('crisis');
    await alice.page.getByTestId('notify-title').fill('Checkout outage trending');
    await alice.page.getByTestId('notify-send').click();
    await bob.page.getByTestId('crisis-banner').waitFor();
    await screenshot(alice.page, 'admin');

    // Dave (globex) got nothing of it.
    await go(dave.page, 'notifications');
    await dave.page.getByTestId('notification-list').waitFor();
    expect(await dave.page.getByTestId('notification-list').textContent()).not.toContain(title);
    expect(await dave.page.getByTestId('crisis-banner').count()).toBe(0);
    expect(await dave.page.getByTestId('bell-badge').count()).toBe(0);
  });

  it('shows typing in a conversation to the other acme user, and globex sees neither the typing nor the thread', async () => {
    await go(alice.page, `inbox/${acmeConversation}`);
    await go(bob.page, `inbox/${acmeConversation}`);
    await go(dave.page, 'inbox');
    await alice.page.getByTestId('thread').waitFor();
    await bob.page.getByTestId('thread').waitFor();
    await alice.page.getByTestId('composer').pressSequentially('Hi Maya, checking', { delay: 20 });
    await expect
      .poll(() => bob.page.getByTestId('typing-indicator').textContent())
      .toContain('Alice Admin is typing');
    await screenshot(bob.page, 'inbox-typing');
    // Presence says what Alice is doing: replying in that thread.
    await expect
      .poll(async () => (await demo.server.publish.getUserPresence('acme', 'alice'))?.activity)
      .toEqual({ kind: 'commenting', target: 'Maya Chen' });

    // The reply lands in Bob's thread; Bob reading it shows a read receipt to Alice.
    await alice.page.getByTestId('send-reply').click();
    await bob.page.getByTestId('message').filter({ hasText: 'Hi Maya, checking' }).waitFor();
    await expect.poll(() => bob.page.getByTestId('typing-indicator').textContent()).not.toContain('typing');
    await alice.page.getByTestId('read-receipt').filter({ hasText: 'Bob' }).waitFor();
    await screenshot(alice.page, 'inbox');

    await dave.page.getByTestId('conversation').filter({ hasText: 'Jonas Weber' }).waitFor();
    expect(await dave.page.getByTestId('conversation-list').textContent()).not.toContain('Maya Chen');
  });

  it('switches workspace: Carol moves from acme to globex, and presence follows her', async () => {
    const carol = await signIn(browser, demo.server.url, 'carol', 'acme');
    try {
      await go(alice.page, 'team');
      await go(dave.page, 'team');
      await go(carol.page, 'inbox');
      await alice.page.locator('[data-testid="presence-user"][data-user="carol"]').waitFor();
      await carol.page.getByTestId('conversation').filter({ hasText: 'Maya Chen' }).waitFor();

      await carol.page.getByTestId('workspace-switch').selectOption('globex');
      await carol.page.locator('.shell[data-user="carol"][data-workspace="globex"]').waitFor();
      await carol.page.getByTestId('conversation').filter({ hasText: 'Jonas Weber' }).waitFor();
      expect(await carol.page.getByTestId('conversation-list').textContent()).not.toContain('Maya Chen');
      // Dave now sees Carol in globex; the admin-only screen is not offered to a member.
      await dave.page.locator('[data-testid="presence-user"][data-user="carol"]').waitFor();
      expect(await carol.page.getByTestId('nav-admin').count()).toBe(0);
      expect(carol.errors).toEqual([]);
    } finally {
      await carol.context.close();
    }
  });

  it('renders the live dashboard with cards and charts, without errors in any page', async () => {
    await go(alice.page, 'dashboard');
    await expect.poll(() => alice.page.getByTestId('platform-card').count()).toBe(3);
    // A live update moves the card on screen.
    await demo.server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'twitter',
      accountId: 'acme',
      count: 48_999,
      change: 789,
    });
    await expect
      .poll(() => alice.page.locator('[data-testid="platform-card"][data-platform="twitter"]').textContent())
      .toContain('48,999');
    expect(await alice.page.locator('[data-testid="followers-chart"] svg').count()).toBeGreaterThan(0);
    await screenshot(alice.page, 'dashboard');
    for (const user of [alice, bob, dave]) expect(user.errors).toEqual([]);
  });
});
