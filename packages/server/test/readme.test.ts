import { describe, expect, it, vi } from 'vitest';
import type { NotificationEvent } from '../src/schema.js';
import { collect, connectClient, startTestServer, synced } from './support/vitest.js';

// The README's examples, run for real so the docs cannot drift from the API.
describe('README examples', () => {
  it('publishing from backend code and the notifications example work as written', async () => {
    await using server = await startTestServer();
    await using pulse = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'admin' } }),
    );
    const seen = collect<{ id: string; data: NotificationEvent }>();
    pulse.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
    await synced(seen);

    await server.publish.broadcastFollowerUpdate({
      workspaceId: 'acme',
      platform: 'instagram',
      accountId: 'acme.official',
      count: 126_568,
      change: 11,
    });
    await server.publish.sendMentionNotification({
      workspaceId: 'acme',
      userId: 'bob',
      data: { platform: 'x', author: '@fan', text: 'love it' },
    });
    expect(await server.publish.isUserOnline('acme', 'bob')).toBe(false);
    await pulse.trpc.notifications.send.mutate({
      workspaceId: 'acme',
      type: 'crisis',
      title: 'Negative spike on #acmefail',
      data: { severity: 'high', topic: '#acmefail', volume: 1840 },
      priority: 'urgent',
    });
    await vi.waitFor(() =>
      expect(seen.items.map((e) => e.data.type)).toEqual(['notification', 'notification']),
    );
    const snapshot = await server.caller.dashboard.snapshot({ workspaceId: 'acme' });
    expect(JSON.stringify(snapshot)).toContain('126568');
  });
});
