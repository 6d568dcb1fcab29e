import { describe, expect, it, vi } from 'vitest';
import type { PresenceEvent, TypingEvent, UserPresence } from '../../src/presence/presence.schema.js';
import {
  collect,
  connectWsOnly,
  createTestDatabase,
  postgresUnavailable,
  redisUnavailable,
  uniquePrefix,
  clusterToken,
  startCluster,
  startPrivateRedis,
} from '../support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

/** What a subscriber's screen shows after the events it received: userId -> status. */
function screen(events: PresenceEvent[]): Record<string, string> {
  const users = new Map<string, UserPresence>();
  for (const event of events) {
    if (event.type === 'snapshot') {
      users.clear();
      for (const user of event.users) users.set(user.userId, user);
    } else if (event.type === 'leave') users.delete(event.userId);
    else users.set(event.user.userId, event.user);
  }
  return Object.fromEntries([...users.values()].map((u) => [u.userId, u.status]));
}

const member = (sub: string) => clusterToken({ sub, name: sub, workspaces: { acme: 'member' } });

describe.skipIf(unavailable)('presence while Redis is down (issue 18, item 6)', () => {
  it('each node keeps presence among its own sockets, and every node converges once Redis returns', async () => {
    const redis = await startPrivateRedis();
    await using db = await createTestDatabase();
    try {
      await using nodes = await startCluster(
        { databaseUrl: db.url, redisUrl: redis.url, redisPrefix: uniquePrefix() },
        2,
        // A long TTL: nothing here may depend on a sweep of dead nodes.
        { PULSE_PRESENCE_TTL_MS: '60000', PULSE_PRESENCE_GRACE_MS: '0' },
      );
      const [n1, n2] = [nodes[0]!, nodes[1]!];
      await using alice = connectWsOnly(n1.wsUrl, await member('alice'));
      await using carol = connectWsOnly(n1.wsUrl, await member('carol'));
      await using bob = connectWsOnly(n2.wsUrl, await member('bob'));
      const onN1 = collect<PresenceEvent>();
      const onN2 = collect<PresenceEvent>();
      alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, onN1);
      bob.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, onN2);
      await vi.waitFor(() => {
        expect(onN1.items[0]).toMatchObject({ type: 'snapshot' });
        expect(onN2.items[0]).toMatchObject({ type: 'snapshot' });
      });
      await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
      await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
      await vi.waitFor(() => {
        expect(screen(onN1.items)).toEqual({ alice: 'online', bob: 'online' });
        expect(screen(onN2.items)).toEqual({ alice: 'online', bob: 'online' });
      });

      await redis.stop();
      // Node 1 alone: carol joins and alice leaves, seen at once by the subscriber on the same node.
      await expect(
        carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'away' }),
      ).resolves.toMatchObject({
        userId: 'carol',
        status: 'away',
      });
      await alice.trpc.presence.leave.mutate({ workspaceId: 'acme' });
      await vi.waitFor(() => expect(screen(onN1.items)).toMatchObject({ carol: 'away' }));
      await vi.waitFor(() => expect(screen(onN1.items).alice).toBeUndefined());
      // Typing too: carol types, alice (same node) sees it in her typing stream.
      const typing = collect<TypingEvent>();
      alice.trpc.presence.onTyping.subscribe({ workspaceId: 'acme', conversationId: 'c1' }, typing);
      await vi.waitFor(() => expect(typing.items[0]).toMatchObject({ type: 'typing_snapshot', typing: [] }));
      await carol.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true });
      await vi.waitFor(() =>
        expect(typing.items).toContainEqual(
          expect.objectContaining({ type: 'typing', userId: 'carol', isTyping: true }),
        ),
      );
      // presence.list answers from what node 1 knows: its own users.
      expect((await carol.trpc.presence.list.query({ workspaceId: 'acme' })).map((u) => u.userId)).toEqual([
        'carol',
      ]);
      // Node 2 alone: bob goes away.
      await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'away' });
      await vi.waitFor(() => expect(screen(onN2.items)).toMatchObject({ bob: 'away' }));

      // Redis returns empty (no persistence): both nodes write back what they hold, node 1 drops
      // alice, and each subscriber ends with the true set, on either node.
      await redis.start();
      const truth = { bob: 'away', carol: 'away' };
      await vi.waitFor(
        () => {
          expect(screen(onN2.items)).toEqual(truth);
          expect(screen(onN1.items)).toEqual(truth);
        },
        { timeout: 15_000, interval: 50 },
      );
      for (const client of [alice, bob]) {
        await vi.waitFor(async () =>
          expect(
            Object.fromEntries(
              (await client.trpc.presence.list.query({ workspaceId: 'acme' })).map((u) => [
                u.userId,
                u.status,
              ]),
            ),
          ).toEqual(truth),
        );
      }
    } finally {
      await redis.stop();
    }
  });
});
