import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createRedisConnectionCounter } from '../../src/infra/connection-counter.js';
import { createRateLimiter } from '../../src/infra/rate-limit.js';
import { createRedisClient } from '../../src/infra/redis-client.js';
import {
  createRedisPresenceBackend,
  presenceHeartbeatKey,
  presenceKeyBase,
} from '../../src/presence/presence.redis.js';
import { type LocalCluster, startLocalCluster } from '../support/vitest.js';
import { presenceEntry } from '../support/presence.js';

let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await startLocalCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const entry = presenceEntry;

test('presence and the per-user count on a cluster: one hash-tagged slot; while its master is down each node keeps its own sockets, and writes them back after', async () => {
  const prefix = `p${Date.now()}:`;
  const nodes = cluster.urls;
  const [a, b] = ['na', 'nb'].map((nodeId) =>
    createRedisPresenceBackend({ cluster: nodes, prefix, nodeId, ttlMs: 60_000 }),
  ) as [ReturnType<typeof createRedisPresenceBackend>, ReturnType<typeof createRedisPresenceBackend>];
  const counter = (nodeId: string) =>
    createRedisConnectionCounter({
      cluster: nodes,
      prefix,
      nodeId,
      keyBase: `${presenceKeyBase(prefix, true)}conns:`,
      heartbeatKey: (node) => presenceHeartbeatKey(prefix, node, true),
    });
  const [ca, cb] = [counter('na'), counter('nb')];
  try {
    // The Lua scripts run on a cluster (their keys share the tag) and both nodes see the same state.
    const joined = await a.upsert('acme', entry('na', 'carol', 'c1'));
    expect(joined.before).toBeNull();
    expect(joined.after).toMatchObject({ userId: 'carol', status: 'online' });
    await vi.waitFor(async () =>
      expect(await b.list('acme')).toEqual([expect.objectContaining({ userId: 'carol' })]),
    );
    expect(await b.countOnline('acme')).toBe(1);
    // The cap script reads the heartbeats by name: same slot, so it runs; it counts across nodes.
    await vi.waitFor(async () => expect(await ca.acquire('erin', 'e1', 2)).toBe(true));
    expect(await cb.acquire('erin', 'e2', 2)).toBe(true);
    expect(await cb.acquire('erin', 'e3', 2)).toBe(false);

    const shard = cluster.nodeOf(presenceKeyBase(prefix, true));
    await cluster.killNode(shard);
    // Node A keeps answering for its own sockets from its local view.
    const offline = await a.upsert('acme', entry('na', 'dave', 'd1'));
    expect(offline.after).toMatchObject({ userId: 'dave' });
    expect((await a.list('acme')).map((u) => u.userId)).toEqual(['carol', 'dave']);
    // The counter falls back to this node's own sockets (never refuses everyone).
    expect(await ca.acquire('frank', 'f1', 1)).toBe(true);
    expect(await ca.acquire('frank', 'f2', 1)).toBe(false);

    await cluster.restartNode(shard);
    // The restarted master lost every key. Node A beats again by itself (no `ready` event comes on a
    // cluster), finds its heartbeat was gone and, at the sweep, writes its entries back for B to see.
    let lost = 0;
    a.onEntriesLost(() => lost++);
    await vi.waitFor(() => expect(lost).toBeGreaterThan(0), { timeout: 20_000, interval: 100 });
    await vi.waitFor(
      async () => {
        await a.sweep(Date.now());
        expect((await b.list('acme')).map((u) => u.userId)).toEqual(['carol', 'dave']);
      },
      { timeout: 20_000, interval: 200 },
    );
    // Node A also wrote back the socket it counted alone meanwhile: B now counts it against the cap.
    await vi.waitFor(
      async () => {
        const counted = await cb.acquire('frank', 'fb', 1);
        if (counted) cb.release('frank', 'fb');
        expect(counted).toBe(false);
      },
      { timeout: 20_000, interval: 200 },
    );
  } finally {
    await Promise.all([a.close(), b.close(), ca.close(), cb.close()]);
  }
}, 90_000);

test('rate limits on a cluster hold across nodes (one key per limiter call, any slot)', async () => {
  const settings = {
    rateLimitPerSec: 100,
    rateLimitBurst: 100,
    rateLimitUserPerSec: 100,
    rateLimitUserBurst: 100,
    queryRatePerSec: 100,
    queryBurst: 100,
    presenceRatePerSec: 100,
    presenceBurst: 100,
    // One typing refresh a minute per key: the second, from the other node, is throttled.
    typingIntervalMs: 60_000,
  };
  const clients = [0, 1].map(() =>
    createRedisClient({ cluster: cluster.urls }, { enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
  );
  try {
    await Promise.all(clients.map((c) => new Promise((resolve) => c.once('ready', resolve))));
    const keyPrefix = `rl${Date.now()}:rl`;
    const [a, b] = clients.map((redis) => createRateLimiter({ settings, redis, keyPrefix })) as [
      ReturnType<typeof createRateLimiter>,
      ReturnType<typeof createRateLimiter>,
    ];
    expect(await a.typingThrottled('u1:c1')).toBe(false);
    expect(await b.typingThrottled('u1:c1')).toBe(true);
    expect(await b.typingThrottled('u2:c1')).toBe(false);
    // The window is in the cluster, not in either process's memory.
    expect(await clients[0]!.get(`${keyPrefix}:typing:u1:c1`)).toBe('2');
  } finally {
    for (const c of clients) c.disconnect();
  }
}, 60_000);
