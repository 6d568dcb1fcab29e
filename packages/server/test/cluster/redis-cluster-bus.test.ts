import { afterAll, beforeAll, expect, test } from 'vitest';
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
