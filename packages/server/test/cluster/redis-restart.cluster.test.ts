import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  createTestDatabase,
  postgresUnavailable,
  redisUnavailable,
  uniquePrefix,
  clusterToken,
  connectToCluster,
  idsOf,
  range,
  startCluster,
  startPrivateRedis,
} from '../support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

interface Tracked {
  id: string;
  data: { type: string };
}

describe.skipIf(unavailable)('Redis restarts under traffic', () => {
  it('nodes resubscribe by themselves: durable events are recovered, snapshots resent, live delivery resumes', async () => {
    // A private Redis this test may kill (never the shared one).
    const redis = await startPrivateRedis();
    await using db = await createTestDatabase();
    await using nodes = await startCluster(
      { databaseUrl: db.url, redisUrl: redis.url, redisPrefix: uniquePrefix() },
      2,
      // A long TTL: presence must come back at once after the restart, not at a sweep 30 s later.
      { PULSE_PRESENCE_TTL_MS: '60000' },
    );
    try {
      const token = await clusterToken({ sub: 'bob', workspaces: { acme: 'member' } });
      await using onN1 = connectToCluster(nodes, 0, token);
      await using onN2 = connectToCluster(nodes, 1, token);
      await using backend = connectToCluster(nodes, 0, await clusterToken({ sub: 'backend', service: true }));
      const notes = [collect<Tracked>(), collect<Tracked>()];
      const dash = collect<{ type: string; value?: number }>();
      onN1.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, notes[0]!);
      onN2.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, notes[1]!);
      onN2.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'acme' }, dash);
      await vi.waitFor(() => expect(dash.items[0]).toMatchObject({ type: 'snapshot' }));
      await using carol = connectToCluster(
        nodes,
        0,
        await clusterToken({ sub: 'carol', workspaces: { acme: 'member' } }),
      );
      await carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });

      const send = (i: number) =>
        backend.trpc.notifications.send.mutate({
          workspaceId: 'acme',
          type: 'alert',
          title: `n${i}`,
          data: { alertType: 'system', severity: 'info', message: `n${i}` },
        });
      for (let i = 0; i < 10; i++) await send(i);
      await vi.waitFor(() => {
        for (const c of notes) expect(c.items).toHaveLength(10);
      });

      // Traffic goes on while Redis goes away and comes back; the node keeps accepting writes.
      await redis.stop();
      for (let i = 10; i < 20; i++) await send(i);
      await redis.start();
      for (let i = 20; i < 30; i++) await send(i);

      await vi.waitFor(
        () => {
          for (const c of notes) expect(c.items.length).toBeGreaterThanOrEqual(30);
        },
        { timeout: 15_000 },
      );
      // The ephemeral stream got a fresh snapshot after the outage, and live updates flow again.
      await vi.waitFor(() =>
        expect(dash.items.filter((e) => e.type === 'snapshot').length).toBeGreaterThanOrEqual(2),
      );
      await backend.trpc.dashboard.publish.mutate({
        workspaceId: 'acme',
        kind: 'metric',
        platform: 'x',
        accountId: 'brand',
        metric: 'impressions',
        value: 99,
      });
      await vi.waitFor(() => expect(dash.items.at(-1)).toMatchObject({ type: 'update', value: 99 }));
      // Redis lost every presence entry; node 1 writes Carol's back as soon as it reconnects.
      await vi.waitFor(
        async () =>
          expect(await onN2.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([
            expect.objectContaining({ userId: 'carol', page: '/inbox' }),
          ]),
        { timeout: 5_000 },
      );
      // Barrier: one more notification. Each stream is delivered in order, so once it is on both
      // clients any duplicate or late copy of the first thirty would have arrived before it.
      await send(30);
      await vi.waitFor(() => {
        for (const c of notes) expect(idsOf(c.items)).toContain('31');
      });
      for (const c of notes) {
        expect(idsOf(c.items)).toEqual(range(31));
        expect(c.errors).toEqual([]);
      }
    } finally {
      await nodes[Symbol.asyncDispose]();
      await redis.stop();
    }
  });
});
