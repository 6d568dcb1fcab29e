/**
 * `npm run bench:bus -w @pulse/bench`: messages per second through the Redis bus on one Redis vs
 * the Redis Cluster bus (sharded pub/sub) on a one-shard and a three-shard local cluster. Publishers
 * and subscribers are separate processes, each with its own connections; every subscriber holds every
 * topic, so each publish is delivered once per subscriber. Prints a markdown table; not in `npm test`.
 *
 * Knobs (environment): PUBS=2 SUBS=2 TOPICS=64 BUS_SECONDS=5 INFLIGHT=32 PAYLOAD=200
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { type LocalCluster, startLocalCluster, startPrivateRedis } from '@pulse/server/testing';
import type { BusWorkerCommand, BusWorkerOptions, BusWorkerReply } from './bus-worker.js';
import { StormProc, spawnStormNode } from './storm-proc.js';

const PUBS = Number(process.env.PUBS ?? 2);
const SUBS = Number(process.env.SUBS ?? 2);
const TOPICS = Number(process.env.TOPICS ?? 64);
const SECONDS = Number(process.env.BUS_SECONDS ?? 5);
const INFLIGHT = Number(process.env.INFLIGHT ?? 32);
const PAYLOAD = Number(process.env.PAYLOAD ?? 200);

interface Row {
  target: string;
  shards: number;
  channelsPerShard: string;
  published: number;
  delivered: number;
  failures: number;
}

type Proc = StormProc<BusWorkerCommand, BusWorkerReply>;

async function run(
  target: BusWorkerOptions['target'],
  ports: number[],
): Promise<Omit<Row, 'target' | 'shards'>> {
  const prefix = `bench${Math.random().toString(36).slice(2, 7)}:`;
  const topics = Array.from({ length: TOPICS }, (_, i) => `notifications:w${i}`);
  const spawnWorker = (role: 'pub' | 'sub', i: number): Proc => {
    const options: BusWorkerOptions = {
      role,
      target,
      prefix,
      topics,
      inflight: INFLIGHT,
      payloadBytes: PAYLOAD,
    };
    return new StormProc(
      `${role}${i}`,
      spawnStormNode({
        script: 'bus-worker.ts',
        args: [JSON.stringify(options)],
        core: null,
        env: process.env,
      }),
    );
  };
  const subs = Array.from({ length: SUBS }, (_, i) => spawnWorker('sub', i));
  const pubs = Array.from({ length: PUBS }, (_, i) => spawnWorker('pub', i));
  const all = [...subs, ...pubs];
  try {
    await Promise.all(all.map((p) => p.next('ready', 60_000)));
    // Where the subscribers' channels are held: each shard holds only its own topics.
    const perShard = ports.map(
      (port) =>
        execFileSync('redis-cli', ['-p', String(port), 'pubsub', 'shardchannels', `${prefix}*`], {
          encoding: 'utf8',
        })
          .split('\n')
          .filter(Boolean).length,
    );
    const ms = SECONDS * 1000;
    const results = await Promise.all(all.map((p) => p.ask({ cmd: 'go', ms }, 'done', ms + 30_000)));
    const published = results.reduce((sum, r) => sum + r.published, 0);
    const delivered = results.reduce((sum, r) => sum + r.received, 0);
    const failures = results.reduce((sum, r) => sum + r.failures, 0);
    return {
      channelsPerShard: 'url' in target ? 'n/a (one Redis, SUBSCRIBE)' : perShard.join(' / '),
      published: published / SECONDS,
      delivered: delivered / SECONDS,
      failures,
    };
  } finally {
    await Promise.all(all.map((p) => p.kill()));
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const loadBefore = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
const rows: Row[] = [];

const single = await startPrivateRedis();
try {
  rows.push({ target: 'one Redis', shards: 1, ...(await run({ url: single.url }, [])) });
} finally {
  await single.stop();
}
for (const shards of [1, 3]) {
  let cluster: LocalCluster | undefined;
  try {
    cluster = await startLocalCluster(shards);
    rows.push({
      target: `Redis Cluster, ${shards} shard${shards > 1 ? 's' : ''}`,
      shards,
      ...(await run({ cluster: cluster.urls }, cluster.ports)),
    });
  } finally {
    await cluster?.stop();
  }
}

console.log(
  `\nbus messages/s — ${PUBS} publisher and ${SUBS} subscriber processes, ${TOPICS} topics (every subscriber holds all), ` +
    `${INFLIGHT} publishes in flight per publisher, ${PAYLOAD} B events, ${SECONDS} s; node ${process.version}; ` +
    `load before ${loadBefore}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
);
console.log('| target | channels per shard | published msg/s | delivered msg/s | publish failures |');
console.log('| --- | --- | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.target} | ${r.channelsPerShard} | ${fmt(r.published)} | ${fmt(r.delivered)} | ${r.failures} |`,
  );
