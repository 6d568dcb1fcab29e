import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PresenceEvent } from '../../src/presence/presence.schema.js';
import { createPublisher } from '../../src/publisher-process.js';
import type { AppRouter } from '../../src/router.js';
import {
  clusterToken,
  collect,
  connectToCluster,
  connectWsOnly,
  createTestDatabase,
  idsOf,
  type LocalCluster,
  type NodeProcess,
  openRaw,
  postgresUnavailable,
  range,
  type RawSocket,
  shardNumSub,
  startCluster,
  startLocalCluster,
  uniquePrefix,
} from '../support/vitest.js';

const unavailable = await postgresUnavailable();

interface Note {
  id: string;
  data: { type: string; notification?: { title: string } };
}

let nextId = 1;
/** Opens a socket for `token` on `node`: 'accepted' once a query over it is answered, else its close code. */
async function connectRaw(
  node: NodeProcess,
  token: string,
): Promise<{ raw: RawSocket; outcome: 'accepted' | number }> {
  const raw = await openRaw(node.wsUrl, { params: { token } });
  const id = nextId++;
  raw.send({
    id,
    method: 'query',
    params: { path: 'notifications.unreadCount', input: { workspaceId: 'acme' } },
  });
  const outcome = await Promise.race([
    raw.next((m) => m.id === id && m.result?.type === 'data').then(() => 'accepted' as const),
    raw.closed.then((c) => c.code),
  ]);
  return { raw, outcome };
}

describe.skipIf(unavailable)('two Pulse nodes on a three-master Redis Cluster (PULSE_REDIS_CLUSTER)', () => {
  let redis: LocalCluster;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let nodes: Awaited<ReturnType<typeof startCluster>>;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    redis = await startLocalCluster(3);
    db = await createTestDatabase();
    nodes = await startCluster(
      {
        databaseUrl: db.url,
        redisCluster: redis.urls.map((u) => u.replace('redis://', '')),
        redisPrefix: prefix,
      },
      2,
      { PULSE_MAX_CONNECTIONS_PER_USER: '3', PULSE_PRESENCE_TTL_MS: '60000' },
    );
  }, 120_000);
  afterAll(async () => {
    await nodes?.[Symbol.asyncDispose]();
    await db?.[Symbol.asyncDispose]();
    await redis?.stop();
  });

  const send = (client: ReturnType<typeof connectToCluster>, workspaceId: string, title: string) =>
    client.trpc.notifications.send.mutate({
      workspaceId,
      type: 'alert',
      title,
      data: { alertType: 'system', severity: 'info', message: title },
    });

  it('a notification sent on node A reaches a client on node B; its topic is held on one shard only', async () => {
    await using backend = connectToCluster(nodes, 0, await clusterToken({ sub: 'backend', service: true }));
    await using bob = connectToCluster(
      nodes,
      1,
      await clusterToken({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const notes = collect<Note>();
    bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, notes);
    const channel = `${prefix}notifications:acme`;
    await vi.waitFor(() =>
      expect(redis.ports.map((p) => shardNumSub(p, channel)).filter((n) => n > 0)).toEqual([1]),
    );
    // Only the shard that owns the channel's slot holds it (the others never hear its messages).
    expect(redis.ports.map((p) => shardNumSub(p, channel))[redis.nodeOf(channel)]).toBe(1);
    await send(backend, 'acme', 'from A');
    await vi.waitFor(() => expect(notes.items.map((n) => n.data.notification?.title)).toEqual(['from A']));
    expect(notes.errors).toEqual([]);
  });

  it('a publisher process on the cluster reaches a socket on a node', async () => {
    await using publisher = await createPublisher({
      databaseUrl: db.url,
      redisCluster: redis.urls,
      redisPrefix: prefix,
    });
    await using bob = connectToCluster(
      nodes,
      1,
      await clusterToken({ sub: 'bob', workspaces: { pub: 'member' } }),
    );
    const notes = collect<Note>();
    bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'pub', lastEventId: '0' }, notes);
    await vi.waitFor(() =>
      expect(
        shardNumSub(redis.ports[redis.nodeOf(`${prefix}notifications:pub`)]!, `${prefix}notifications:pub`),
      ).toBe(1),
    );
    await publisher.sendWorkspaceNotification('pub', {
      type: 'alert',
      title: 'from a worker',
      data: { alertType: 'system', severity: 'info', message: 'from a worker' },
    });
    await vi.waitFor(() =>
      expect(notes.items.map((n) => n.data.notification?.title)).toEqual(['from a worker']),
    );
    await expect(createPublisher({ databaseUrl: db.url })).rejects.toThrow(
      'createPublisher: give redisUrl or redisCluster (the nodes’ Redis)',
    );
  });

  it('presence of a user on node A is seen on node B (event and query)', async () => {
    await using bob = connectWsOnly(
      nodes[1]!.wsUrl,
      await clusterToken({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await using carol = connectWsOnly(
      nodes[0]!.wsUrl,
      await clusterToken({ sub: 'carol', name: 'Carol', workspaces: { acme: 'member' } }),
    );
    const bobSees = collect<PresenceEvent>();
    bob.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, bobSees);
    await vi.waitFor(() => expect(bobSees.items[0]).toMatchObject({ type: 'snapshot' }));
    await carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });
    await vi.waitFor(() =>
      expect(bobSees.items).toContainEqual(
        expect.objectContaining({ type: 'join', user: expect.objectContaining({ userId: 'carol' }) }),
      ),
    );
    expect(await bob.trpc.presence.list.query({ workspaceId: 'acme' })).toContainEqual(
      expect.objectContaining({ userId: 'carol', status: 'online', page: '/inbox' }),
    );
    expect(bobSees.errors).toEqual([]);
    // Typing (a MULTI over the workspace's hash and the expiry index) is shared too: a subscriber on
    // node B gets Carol's indicator, set on node A, in its first snapshot.
    await carol.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true });
    const typing = collect<{ type: string; typing?: Array<{ userId: string }> }>();
    bob.trpc.presence.onTyping.subscribe({ workspaceId: 'acme', conversationId: 'c1' }, typing);
    await vi.waitFor(() =>
      expect(typing.items[0]).toMatchObject({ type: 'typing_snapshot', typing: [{ userId: 'carol' }] }),
    );
    expect(typing.errors).toEqual([]);
  });

  it('the per-user connection cap counts across nodes: the 4th socket of a cap of 3 is refused with 4429', async () => {
    const token = await clusterToken({ sub: 'erin', workspaces: { acme: 'member' } });
    const open: RawSocket[] = [];
    try {
      for (const node of [nodes[0]!, nodes[0]!, nodes[1]!]) {
        const { raw, outcome } = await connectRaw(node, token);
        open.push(raw);
        expect(outcome).toBe('accepted');
      }
      const fourth = await connectRaw(nodes[1]!, token);
      expect(fourth.outcome).toBe(4429);
      const refusal = fourth.raw.messages.find((m) => m.error);
      expect(refusal?.error?.data?.code).toBe('TOO_MANY_REQUESTS');
      expect(refusal?.error?.message).toBe('Connection limit (3) reached for this user');
      // Closing one on A frees a slot for B.
      await open.shift()!.close();
      await vi.waitFor(
        async () => {
          const next = await connectRaw(nodes[1]!, token);
          if (next.outcome === 'accepted') open.push(next.raw);
          expect(next.outcome).toBe('accepted');
        },
        { timeout: 10_000, interval: 100 },
      );
    } finally {
      await Promise.all(open.map((s) => s.close()));
    }
  });

  it('two workspaces are isolated: a client of workspace B sees nothing of A', async () => {
    await using backend = connectToCluster(nodes, 0, await clusterToken({ sub: 'backend', service: true }));
    await using dana = connectToCluster(
      nodes,
      1,
      await clusterToken({ sub: 'dana', workspaces: { globex: 'member' } }),
    );
    await using alice = connectWsOnly(
      nodes[0]!.wsUrl,
      await clusterToken({ sub: 'alice', workspaces: { acme: 'member' } }),
    );
    const globexNotes = collect<Note>();
    const globexPresence = collect<PresenceEvent>();
    dana.trpc.notifications.onNotification.subscribe(
      { workspaceId: 'globex', lastEventId: '0' },
      globexNotes,
    );
    dana.trpc.presence.onChange.subscribe({ workspaceId: 'globex' }, globexPresence);
    await vi.waitFor(() => expect(globexPresence.items[0]).toMatchObject({ type: 'snapshot', users: [] }));
    // Another workspace's stream is refused outright.
    const refused = collect<Note>();
    dana.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, refused);
    await vi.waitFor(() => expect(refused.errors).toHaveLength(1));
    const error = refused.errors[0] as TRPCClientError<AppRouter>;
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.data?.code).toBe('FORBIDDEN');
    expect(error.message).toBe('Not a member of workspace "acme"');

    await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await send(backend, 'acme', 'acme only');
    await send(backend, 'globex', 'globex only');
    // Barrier: globex's own event arrived; acme's (sent first, on the same node) is not there.
    await vi.waitFor(() =>
      expect(globexNotes.items.map((n) => n.data.notification?.title)).toEqual(['globex only']),
    );
    expect(globexPresence.items).toEqual([expect.objectContaining({ type: 'snapshot', users: [] })]);
    expect(await dana.trpc.presence.list.query({ workspaceId: 'globex' })).toEqual([]);
    expect(refused.items).toEqual([]);
  });

  it('a master restarts: a topic on it delivers again and the durable events sent meanwhile are recovered', async () => {
    // A workspace whose notification topic lives on a shard of its own choosing: the one killed.
    const workspaceId = 'restart';
    const channel = `${prefix}notifications:${workspaceId}`;
    const shard = redis.nodeOf(channel);
    await using backend = connectToCluster(nodes, 0, await clusterToken({ sub: 'backend', service: true }));
    const token = await clusterToken({ sub: 'frank', workspaces: { [workspaceId]: 'member' } });
    await using onA = connectToCluster(nodes, 0, token);
    await using onB = connectToCluster(nodes, 1, token);
    const notes = [collect<Note>(), collect<Note>()];
    onA.trpc.notifications.onNotification.subscribe({ workspaceId, lastEventId: '0' }, notes[0]!);
    onB.trpc.notifications.onNotification.subscribe({ workspaceId, lastEventId: '0' }, notes[1]!);
    await vi.waitFor(() => expect(shardNumSub(redis.ports[shard]!, channel)).toBe(2));
    for (let i = 0; i < 5; i++) await send(backend, workspaceId, `n${i}`);
    await vi.waitFor(() => {
      for (const c of notes) expect(c.items).toHaveLength(5);
    });

    await redis.killNode(shard);
    // Writes go on while the topic's shard is gone: stored, their publish fails (never thrown).
    for (let i = 5; i < 10; i++) await send(backend, workspaceId, `n${i}`);
    // These publishes resolved while the shard was dead: whatever of them arrives later was replayed.
    for (const c of notes) expect(c.items).toHaveLength(5);
    await redis.restartNode(shard);
    for (let i = 10; i < 15; i++) await send(backend, workspaceId, `n${i}`);

    // Both nodes hold the topic on the restarted shard again.
    await vi.waitFor(() => expect(shardNumSub(redis.ports[shard]!, channel)).toBe(2), { timeout: 15_000 });
    await vi.waitFor(
      () => {
        for (const c of notes) expect(c.items.length).toBeGreaterThanOrEqual(15);
      },
      { timeout: 15_000 },
    );
    // Barrier: one more, live. Each stream is delivered in order, so a duplicate would be before it.
    await send(backend, workspaceId, 'n15');
    await vi.waitFor(() => {
      for (const c of notes) expect(idsOf(c.items)).toContain('16');
    });
    for (const c of notes) {
      expect(idsOf(c.items)).toEqual(range(16));
      expect(c.errors).toEqual([]);
    }
  });
});
