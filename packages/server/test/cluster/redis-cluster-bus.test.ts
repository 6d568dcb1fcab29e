import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import type { BusMessage } from '../../src/infra/bus/bus.js';
import { createRedisClusterBus } from '../../src/infra/bus/redis-cluster-bus.js';
import { type LocalCluster, shardNumSub, startLocalCluster } from '../support/vitest.js';

let cluster: LocalCluster;
beforeAll(async () => {
  cluster = await startLocalCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function waitFor(cond: () => boolean, tries = 400): Promise<void> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
}

test('two bus nodes on a three-master cluster: a topic reaches the other node and its channel lives on one shard only', async () => {
  const a = createRedisClusterBus({ nodes: cluster.urls, prefix: 't:' });
  const b = createRedisClusterBus({ nodes: cluster.urls, prefix: 't:' });
  try {
    const got: BusMessage[] = [];
    const topics = ['notifications:u1', 'dashboard:w1', 'inbox:u2'];
    const subs = topics.map((t) => b.subscribe(t, (m) => got.push(m)));
    await Promise.all(subs.map((s) => s.ready));
    for (const [i, t] of topics.entries()) await a.publish(t, { id: String(i), data: { topic: t } });
    await waitFor(() => got.length === topics.length);
    expect(got.map((m) => (m.data as { topic: string }).topic).sort()).toEqual([...topics].sort());
    for (const t of topics) {
      const counts = cluster.ports.map((p) => shardNumSub(p, `t:${t}`));
      expect(counts.filter((c) => c > 0)).toEqual([1]);
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}, 60_000);

test('a restarted master: the bus subscribes its topic again, resyncs, and the topic delivers again', async () => {
  const errors: Error[] = [];
  const a = createRedisClusterBus({ nodes: cluster.urls, prefix: 'r:', onError: (e) => errors.push(e) });
  const b = createRedisClusterBus({ nodes: cluster.urls, prefix: 'r:', onError: (e) => errors.push(e) });
  try {
    const topic = 'notifications:acme';
    const shard = cluster.nodeOf(`r:${topic}`);
    const got: BusMessage[] = [];
    let resyncs = 0;
    b.onResync(() => resyncs++);
    await b.subscribe(topic, (m) => got.push(m)).ready;
    await a.publish(topic, { id: '1', data: { n: 1 } });
    await waitFor(() => got.length === 1);
    expect(got.map((m) => m.id)).toEqual(['1']);

    await cluster.killNode(shard);
    // The shard is gone: the publish fails (reported, never thrown) and the event is not delivered.
    await a.publish(topic, { id: '2', data: { n: 2 } });
    expect(a.stats().publishFailures).toBe(1);
    await cluster.restartNode(shard);

    // Every subscriber of a topic on that shard lost it: once held again, its streams resync.
    await waitFor(
      () => resyncs > 0 && b.stats().channels === 1 && shardNumSub(cluster.ports[shard]!, `r:${topic}`) === 1,
    );
    expect(resyncs).toBeGreaterThan(0);
    expect(shardNumSub(cluster.ports[shard]!, `r:${topic}`)).toBe(1);
    // Ready again once every loss ioredis reported is behind it (a replaced subscriber may report twice).
    await vi.waitFor(() => expect(b.ping()).resolves.toBeUndefined(), { timeout: 15_000, interval: 100 });
    await a.publish(topic, { id: '3', data: { n: 3 } });
    await waitFor(() => got.length === 2);
    expect(got.map((m) => m.id)).toEqual(['1', '3']);
    expect(errors.length).toBeGreaterThan(0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}, 60_000);

test('a master holding none of a bus node’s channels restarts: the node is ready again and still delivers', async () => {
  const a = createRedisClusterBus({ nodes: cluster.urls, prefix: 'q:' });
  const b = createRedisClusterBus({ nodes: cluster.urls, prefix: 'q:' });
  try {
    const held = new Set([cluster.nodeOf('q:__resync')]);
    const onShard = (shard: number) => {
      for (let i = 0; ; i++) if (cluster.nodeOf(`q:t${i}`) === shard) return `t${i}`;
    };
    const subscribed = onShard(held.values().next().value!);
    const other = [0, 1, 2].find((i) => !held.has(i))!;
    const got: BusMessage[] = [];
    await b.subscribe(subscribed, (m) => got.push(m)).ready;
    // B publishes to a topic on the other master (no subscriber there): it holds a connection to it.
    await b.publish(onShard(other), { data: { n: 0 } });
    await cluster.killNode(other);
    await cluster.restartNode(other);
    await vi.waitFor(() => expect(b.ping()).resolves.toBeUndefined(), { timeout: 15_000, interval: 100 });
    await a.publish(subscribed, { id: '1', data: { n: 1 } });
    await waitFor(() => got.length === 1);
    expect(got.map((m) => m.id)).toEqual(['1']);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}, 60_000);
