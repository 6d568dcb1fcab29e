import { describe, expect, it, vi } from 'vitest';
import type { PresenceEvent, TypingEvent } from '../../src/presence/presence.schema.js';
import {
  collect,
  connectClient,
  connectWsOnly,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
  clusterToken,
  startCluster,
  startNode,
} from '../support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe.skipIf(unavailable)('presence across real node processes (Redis + PostgreSQL)', () => {
  it('users on different nodes see each other and typing; a SIGKILLed node’s users leave within the TTL', async () => {
    await using db = await createTestDatabase();
    await using nodes = await startCluster(
      { databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix: uniquePrefix() },
      2,
    );
    const n1 = nodes[0]!;
    const n2 = nodes[1]!;
    await using alice = connectWsOnly(
      n1.wsUrl,
      await clusterToken({ sub: 'alice', name: 'Alice', workspaces: { acme: 'admin' } }),
    );
    await using bob = connectWsOnly(
      n2.wsUrl,
      await clusterToken({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } }),
    );

    const bobSees = collect<PresenceEvent>();
    const bobSub = bob.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, bobSees);
    await vi.waitFor(() => expect(bobSees.items[0]).toMatchObject({ type: 'snapshot', users: [] }));

    await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });
    await vi.waitFor(() =>
      expect(bobSees.items).toContainEqual(
        expect.objectContaining({ type: 'join', user: expect.objectContaining({ userId: 'alice' }) }),
      ),
    );
    await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'away' });
    // A query on either node answers from the shared store.
    for (const client of [alice, bob]) {
      expect(await client.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([
        expect.objectContaining({ userId: 'alice', status: 'online', page: '/inbox' }),
        expect.objectContaining({ userId: 'bob', status: 'away' }),
      ]);
    }

    // Typing on node 1 is in the snapshot a new subscriber on node 2 receives.
    await alice.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true });
    const typing = collect<TypingEvent>();
    const typingSub = bob.trpc.presence.onTyping.subscribe(
      { workspaceId: 'acme', conversationId: 'c1' },
      typing,
    );
    await vi.waitFor(() =>
      expect(typing.items[0]).toMatchObject({
        type: 'typing_snapshot',
        typing: [{ conversationId: 'c1', userId: 'alice' }],
      }),
    );

    // Node 1 dies without a word: its heartbeat lapses and node 2 sweeps Alice exactly once.
    await n1.kill('SIGKILL');
    await vi.waitFor(
      () => expect(bobSees.items).toContainEqual(expect.objectContaining({ type: 'leave', userId: 'alice' })),
      // TTL 2 s, plus at most one sweep interval (TTL/2), plus slack for a loaded machine.
      { timeout: 6_000, interval: 50 },
    );
    expect(await bob.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([
      expect.objectContaining({ userId: 'bob' }),
    ]);
    // Alice's indicator can no longer be cleared by her node: another node claims and clears it, once.
    await vi.waitFor(
      () =>
        expect(typing.items).toContainEqual(
          expect.objectContaining({ type: 'typing', userId: 'alice', isTyping: false }),
        ),
      { timeout: 8_000, interval: 50 },
    );
    // Barrier: Carol, over HTTP on node 2 (no socket), joins and types. Her entry expires after the
    // TTL and a later sweep of node 2 removes it; her indicator goes at the typing TTL (3 s, past the
    // next typing sweep, 1.5 s). Node 2 publishes each stream in order, so once both are here every
    // sweep since Alice's leave has run, and a second leave or clear for her would have come first.
    await using carol = connectClient(
      n2,
      await clusterToken({ sub: 'carol', name: 'Carol', workspaces: { acme: 'member' } }),
    );
    await carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await carol.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true });
    await vi.waitFor(
      () => {
        expect(bobSees.items).toContainEqual(expect.objectContaining({ type: 'leave', userId: 'carol' }));
        expect(typing.items).toContainEqual(
          expect.objectContaining({ type: 'typing', userId: 'carol', isTyping: false }),
        );
      },
      // TTL 2 s plus one sweep interval for the leave, typing TTL 3 s, plus slack for a loaded machine.
      { timeout: 8_000, interval: 50 },
    );
    expect(bobSees.items.filter((e) => e.type === 'leave' && e.userId === 'alice')).toHaveLength(1);
    expect(
      typing.items.filter((e) => e.type === 'typing' && e.userId === 'alice' && !e.isTyping),
    ).toHaveLength(1);
    expect(bobSees.items.filter((e) => e.type === 'leave')).toHaveLength(2);
    expect(typing.items.filter((e) => e.type === 'typing' && !e.isTyping)).toHaveLength(2);
    bobSub.unsubscribe();
    typingSub.unsubscribe();
  });

  it('a node restarted under the same id right away drops the entries its previous process left', async () => {
    await using db = await createTestDatabase();
    const cluster = { databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix: uniquePrefix() };
    await using nodes = await startCluster(cluster, 1);
    const watcher = nodes[0]!;
    const first = await startNode(cluster, { nodeId: 'stable-id', env: { PULSE_PRESENCE_TTL_MS: '60000' } });
    await using carol = connectWsOnly(
      first.wsUrl,
      await clusterToken({ sub: 'carol', workspaces: { acme: 'member' } }),
    );
    await using dave = connectWsOnly(
      watcher.wsUrl,
      await clusterToken({ sub: 'dave', workspaces: { acme: 'member' } }),
    );
    const seen = collect<PresenceEvent>();
    dave.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items[0]).toMatchObject({ type: 'snapshot' }));
    await carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'join' })));
    // Killed and back under the same id long before its 60 s heartbeat TTL: nobody else would sweep it.
    await first.kill('SIGKILL');
    const second = await startNode(cluster, { nodeId: 'stable-id', env: { PULSE_PRESENCE_TTL_MS: '60000' } });
    try {
      await vi.waitFor(
        () => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'leave', userId: 'carol' })),
        { timeout: 5_000 },
      );
      expect(await dave.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
    } finally {
      await second.kill('SIGKILL');
    }
  });
});
