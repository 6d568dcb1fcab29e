import type { DemoServer } from '@pulse/server/demo';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, go, launchBrowser, type SignedIn, screenshot, signIn, startAppServer } from './harness.js';

// The notification centre (seen / read / archived, preferences) and the charts' history, as Bob
// (a member of `acme`) sees them in Chromium, against one real Pulse node serving the built app.
describe('notification feed and chart history in Chromium', () => {
  let app: Awaited<ReturnType<typeof buildApp>>;
  let demo: DemoServer;
  let browser: Browser & AsyncDisposable;
  let bob: SignedIn;
  const tag = Date.now().toString(36);

  const mention = (title: string) =>
    demo.server.caller.notifications.send({
      workspaceId: 'acme',
      userId: 'bob',
      type: 'mention',
      title,
      data: { platform: 'x', author: '@fan', text: `about ${title}` },
    });
  const listItem = (title: string) =>
    bob.page.getByTestId('notification-list').getByTestId('notification').filter({ hasText: title });

  beforeAll(async () => {
    app = await buildApp();
    demo = await startAppServer(app.dir, { generator: false });
    // History from before the app opened: three hours of followers and impressions every 30 min.
    const now = Date.now();
    for (let minutesAgo = 180; minutesAgo >= 30; minutesAgo -= 30) {
      const at = new Date(now - minutesAgo * 60_000).toISOString();
      const base = { workspaceId: 'acme', platform: 'instagram', accountId: 'acme.official', at } as const;
      await demo.server.caller.dashboard.publish({ ...base, kind: 'followers', count: 126_000 + minutesAgo });
      await demo.server.caller.dashboard.publish({
        ...base,
        kind: 'metric',
        metric: 'impressions',
        value: 9_000 - minutesAgo,
      });
    }
    browser = await launchBrowser();
    bob = await signIn(browser, demo.server.url, 'bob', 'acme');
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.close({ graceMs: 0 });
    await app?.[Symbol.asyncDispose]();
  });

  it('charts open on the stored history (points counted from data, not pixels), then move live', async () => {
    await go(bob.page, 'dashboard');
    const followers = bob.page.getByTestId('followers-chart');
    await expect.poll(() => followers.getAttribute('data-status')).toBe('live');
    // Six half-hourly values land in six 1-minute buckets.
    expect(Number(await followers.getAttribute('data-points'))).toBe(6);
    expect(Number(await bob.page.getByTestId('impressions-chart').getAttribute('data-points'))).toBe(6);
    await demo.server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'instagram',
      accountId: 'acme.official',
      count: 126_500,
    });
    await expect.poll(async () => Number(await followers.getAttribute('data-points'))).toBe(7);
    await screenshot(bob.page, 'feed-charts');
  });

  it('opening the bell marks everything seen (badge gone) while the items stay unread', async () => {
    const title = `Seen not read ${tag}`;
    await mention(title);
    await expect.poll(() => bob.page.getByTestId('bell-badge').textContent()).toBe('1');
    await bob.page.getByTestId('bell').click();
    const item = bob.page.getByTestId('bell-popover').getByTestId('notification').filter({ hasText: title });
    await item.waitFor();
    await expect.poll(() => bob.page.getByTestId('bell-badge').count()).toBe(0);
    await expect.poll(() => item.getAttribute('data-seen')).toBe('true');
    expect(await item.getAttribute('data-unread')).toBe('true');
    expect(await demo.server.services.notifications.counts('bob', 'acme')).toEqual({
      unseen: 0,
      unread: 1,
      asOf: expect.any(String),
    });
    await bob.page.keyboard.press('Escape');
    await bob.page.getByTestId('bell-popover').waitFor({ state: 'detached' });
    // The next one brings the badge back.
    await mention(`After opening ${tag}`);
    await expect.poll(() => bob.page.getByTestId('bell-badge').textContent()).toBe('1');
  });

  it('archive moves an item to the Archived tab, unarchive brings it back', async () => {
    const title = `To archive ${tag}`;
    await mention(title);
    await go(bob.page, 'notifications');
    await listItem(title).waitFor();
    // Its toast sits over the top of the list (top right, where the archive button is): dismiss it.
    await bob.page
      .getByTestId('toast')
      .filter({ hasText: title })
      .getByRole('button', { name: 'Dismiss' })
      .click();
    await listItem(title).getByTestId('notification-archive').click();
    await listItem(title).waitFor({ state: 'detached' });
    await bob.page.getByTestId('notifications-tab-archived').click();
    await bob.page.locator('[data-testid="notification-list"][data-tab="archived"]').waitFor();
    await listItem(title).waitFor();
    expect(await listItem(title).getAttribute('data-archived')).toBe('true');
    expect(await bob.page.getByTestId('notification-list').getByTestId('notification').count()).toBe(1);
    await screenshot(bob.page, 'feed-archived');
    await listItem(title).getByTestId('notification-unarchive').click();
    await listItem(title).waitFor({ state: 'detached' });
    await bob.page.getByTestId('notifications-tab-all').click();
    await listItem(title).waitFor();
    expect(await listItem(title).getAttribute('data-archived')).toBe('false');
  });

  it('a kind muted in preferences is not shown for the next send; crisis is locked by the workspace', async () => {
    await go(bob.page, 'notifications/preferences');
    const reviews = bob.page.getByTestId('pref-review');
    await expect.poll(() => reviews.isChecked()).toBe(true);
    expect(await bob.page.getByTestId('pref-crisis').isDisabled()).toBe(true);
    await bob.page.getByTestId('pref-crisis-locked').waitFor();
    await reviews.uncheck();
    await expect.poll(() => reviews.isChecked()).toBe(false);
    await expect
      .poll(
        async () => (await demo.server.services.notifications.preferences('bob', 'acme')).effective.review,
      )
      .toBe(false);
    await screenshot(bob.page, 'feed-preferences');

    const badgeBefore = Number((await bob.page.getByTestId('bell-badge').textContent()) ?? '0');
    await demo.server.caller.notifications.send({
      workspaceId: 'acme',
      userId: 'bob',
      type: 'review',
      title: `Muted review ${tag}`,
      data: { platform: 'google', author: 'Kim', rating: 1 },
    });
    const after = `Heard mention ${tag}`;
    await mention(after);
    await go(bob.page, 'notifications');
    await listItem(after).waitFor();
    expect(await listItem(`Muted review ${tag}`).count()).toBe(0);
    // Only the mention moved the badge.
    await expect.poll(() => bob.page.getByTestId('bell-badge').textContent()).toBe(String(badgeBefore + 1));
    expect(bob.errors).toEqual([]);
  });
});
