import { describe, expect, it } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
  type Tracked,
  waitFor,
} from '../../test/support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

const alert = (title: string) => ({
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

describe.skipIf(unavailable)('notifications across two nodes (PostgreSQL + Redis)', () => {
  it('concurrent senders on both nodes: every subscriber on either node gets every event once, in id order', async () => {
    await using db = await createTestDatabase();
    const config = { databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix: uniquePrefix() };
    await using n1 = await startTestServer({ config: { ...config, nodeId: 'n1' } });
    await using n2 = await startTestServer({ config: { ...config, nodeId: 'n2' } });
    const token = await n1.token({ sub: 'bob', workspaces: { acme: 'member' } });
    await using tab1 = connectClient(n1, token);
    await using tab2 = connectClient(n2, token);
    const seen1 = collect<Tracked>();
    const seen2 = collect<Tracked>();
    tab1.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen1);
    tab2.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen2);
    // Both subscriptions are live once their sync (the stream's head) arrived.
    await synced(seen1, seen2);

    const perNode = 20;
    await Promise.all(
      Array.from({ length: perNode }, (_, i) => [
        n1.publish.sendNotification('acme', 'bob', alert(`n1-${i}`)),
        n2.publish.sendWorkspaceNotification('acme', alert(`n2-${i}`)),
      ]).flat(),
    );
    const all = Array.from({ length: 2 * perNode }, (_, i) => String(i + 1));
    await waitFor(() => expect(seen1.items.length).toBeGreaterThanOrEqual(all.length), {
      timeoutMs: 10_000,
    });
    await waitFor(() => expect(seen2.items.length).toBeGreaterThanOrEqual(all.length), {
      timeoutMs: 10_000,
    });
    // Nothing else is written until the read below, so the first forty are all of them; that no copy
    // follows is checked once the read (a barrier: each stream is delivered in order) is in.
    expect(seen1.items.slice(0, all.length).map((item) => item.id)).toEqual(all);
    expect(seen2.items.slice(0, all.length).map((item) => item.id)).toEqual(all);

    // A read on one node reaches the other tab; a resume on the other node replays from the store.
    const [first] = (await tab2.trpc.notifications.list.query({ workspaceId: 'acme', limit: 1 })).items;
    await tab2.trpc.notifications.markRead.mutate({ workspaceId: 'acme', ids: [first?.id ?? ''] });
    for (const seen of [seen1, seen2])
      await waitFor(() =>
        expect(seen.items.at(-1)?.data).toMatchObject({ type: 'read', unreadCount: 2 * perNode - 1 }),
      );
    expect(seen1.items.map((item) => item.id)).toEqual([...all, '41']);
    expect(seen2.items.map((item) => item.id)).toEqual([...all, '41']);
    const resumed = collect<Tracked>();
    await using tab3 = connectClient(n2, token);
    tab3.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '30' }, resumed);
    await waitFor(() => expect(resumed.items).toHaveLength(11));
    expect(resumed.items.map((item) => item.id)).toEqual(
      Array.from({ length: 11 }, (_, i) => String(31 + i)),
    );
  });

  it('five concurrent sends with one key on two nodes deliver once', async () => {
    await using db = await createTestDatabase();
    const config = { databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix: uniquePrefix() };
    await using n1 = await startTestServer({ config: { ...config, nodeId: 'n1' } });
    await using n2 = await startTestServer({ config: { ...config, nodeId: 'n2' } });
    await using bob = connectClient(n1, await n1.token({ sub: 'bob', workspaces: { acme: 'member' } }));
    const seen = collect<Tracked>();
    bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
    await synced(seen);
    const send = (node: typeof n1) =>
      node.publish.sendCrisisAlert({
        workspaceId: 'acme',
        idempotencyKey: 'crisis-outage-1',
        data: { severity: 'critical', topic: 'outage', volume: 5000 },
      });
    const results = await Promise.all([n1, n2, n1, n2, n1].map(send));
    expect(new Set(results.map((r) => r.notification.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    await waitFor(() => expect(seen.items).toHaveLength(1));
    // Barrier: a later alert without the key arrives; none of the five can still arrive after it.
    await n2.publish.sendCrisisAlert({
      workspaceId: 'acme',
      data: { severity: 'critical', topic: 'barrier', volume: 1 },
    });
    await waitFor(() => expect(seen.items).toHaveLength(2));
    expect(seen.items[1]?.data).toMatchObject({
      notification: { type: 'crisis', data: { topic: 'barrier' } },
    });
    expect(seen.items[0]?.data).toMatchObject({ notification: { priority: 'urgent', type: 'crisis' } });
  });
});
