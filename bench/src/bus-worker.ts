/**
 * One process of `bench:bus`: a publisher or a subscriber on its own bus (its own Redis or Redis
 * Cluster connections), driven by bus.ts over IPC.
 */
import { type Bus, createRedisBus, createRedisClusterBus } from '@pulse/server';

export interface BusWorkerOptions {
  role: 'pub' | 'sub';
  /** One Redis (`url`) or a Redis Cluster's startup nodes. */
  target: { url: string } | { cluster: string[] };
  prefix: string;
  topics: string[];
  /** Publishes in flight per publisher. */
  inflight: number;
  /** Bytes of event JSON per message. */
  payloadBytes: number;
}
export type BusWorkerCommand = { cmd: 'go'; ms: number } | { cmd: 'stop' };
export type BusWorkerReply =
  | { type: 'ready' }
  | { type: 'done'; published: number; received: number; failures: number }
  | { type: 'error'; message: string };

const opts = JSON.parse(process.argv[2]!) as BusWorkerOptions;
const reply = (message: BusWorkerReply) => process.send?.(message);
let failures = 0;
const onError = () => {
  failures++;
};
const bus: Bus =
  'url' in opts.target
    ? createRedisBus({ url: opts.target.url, prefix: opts.prefix, onError })
    : createRedisClusterBus({ nodes: opts.target.cluster, prefix: opts.prefix, onError });

let received = 0;
if (opts.role === 'sub') {
  const subs = opts.topics.map((topic) =>
    bus.subscribe(topic, () => {
      received++;
    }),
  );
  await Promise.all(subs.map((s) => s.ready));
} else {
  // The single-Redis bus refuses commands before its first connection (no offline queue): wait for it.
  for (let i = 0; ; i++) {
    try {
      await bus.ping();
      break;
    } catch (error) {
      if (i > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
reply({ type: 'ready' });

const data = { type: 'bench', text: 'x'.repeat(Math.max(0, opts.payloadBytes - 30)) };
const json = JSON.stringify(data);

async function publishFor(ms: number): Promise<number> {
  const until = performance.now() + ms;
  let published = 0;
  let next = 0;
  const lane = async () => {
    while (performance.now() < until) {
      const n = next++;
      const topic = opts.topics[n % opts.topics.length]!;
      await bus.publish(topic, { id: String(n + 1), data, json, publishedAt: Date.now() });
      published++;
    }
  };
  await Promise.all(Array.from({ length: opts.inflight }, lane));
  return published;
}

process.on('message', (command: BusWorkerCommand) => {
  if (command.cmd === 'stop') {
    void bus.close().finally(() => process.exit(0));
    return;
  }
  void (async () => {
    try {
      if (opts.role === 'pub') {
        const published = await publishFor(command.ms);
        reply({ type: 'done', published, received: 0, failures });
      } else {
        const start = received;
        await new Promise((resolve) => setTimeout(resolve, command.ms));
        reply({ type: 'done', published: 0, received: received - start, failures });
      }
    } catch (error) {
      reply({ type: 'error', message: String(error) });
    }
  })();
});
