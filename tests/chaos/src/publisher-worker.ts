// A publisher in its own process (`createPublisher`): sends durable notifications with idempotency
// keys, retrying a failed send with the same key, and reports every outcome to the runner over IPC.
import { createPublisher } from '@pulse/server';
import { createRng } from './prng.js';
import type { PublisherMessage, RunnerMessage, WorkerConfig } from './protocol.js';

const cfg = JSON.parse(process.env.PULSE_CHAOS_WORKER!) as WorkerConfig;
const rng = createRng(cfg.seed);
const send = (m: PublisherMessage) => process.send?.(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const publisher = await createPublisher({
  databaseUrl: cfg.databaseUrl,
  redisUrl: cfg.redisUrl,
  redisPrefix: cfg.redisPrefix,
  config: { notifications: { retention: cfg.retention }, nodeId: cfg.workerId },
});

let stopping = false;
const barriers: string[] = [];
process.on('message', (m: RunnerMessage) => {
  if (m.t === 'stop') stopping = true;
  if (m.t === 'barrier') barriers.push(m.workspaceId);
});
process.on('disconnect', () => process.exit(0));

/** One logical publish: up to `maxAttempts` sends with the same key until one returns. */
async function publishOnce(key: string, workspaceId: string, userId: string | null, barrier: boolean) {
  for (let attempt = 1; attempt <= cfg.maxAttempts; attempt++) {
    try {
      const message = {
        type: 'alert' as const,
        title: barrier ? `barrier ${key}` : `chaos ${key}`,
        idempotencyKey: key,
        data: { alertType: 'system' as const, severity: 'info' as const, message: key },
      };
      const result = userId
        ? await publisher.sendNotification(workspaceId, userId, message)
        : await publisher.sendWorkspaceNotification(workspaceId, message);
      send({
        t: 'ack',
        key,
        workspaceId,
        userId,
        notificationId: result.notification.id,
        eventId: result.notification.eventId,
        created: result.created,
        attempts: attempt,
        barrier,
      });
      return result.notification.id;
    } catch (error) {
      send({ t: 'retry', key, attempt, error: String((error as Error)?.message ?? error).slice(0, 200) });
      await sleep(Math.min(2_000, 100 * 2 ** attempt));
    }
  }
  send({ t: 'gaveup', key });
  return null;
}

let n = 0;
while (!stopping && n < cfg.maxPublishes) {
  while (barriers.length > 0) {
    const ws = barriers.shift()!;
    await publishOnce(`${cfg.workerId}-barrier-${ws}-${n++}`, ws, null, true);
  }
  const ws = rng.pick(cfg.workspaces);
  const userId = rng.chance(0.5) ? null : rng.pick(ws.users);
  const key = `${cfg.workerId}-${n++}`;
  const id = await publishOnce(key, ws.id, userId, false);
  // A deliberate duplicate now and then: a retry of a publish that had succeeded.
  if (id && rng.chance(0.1)) {
    await publishOnce(key, ws.id, userId, false);
  }
  await sleep(rng.int(cfg.gapMs[0], cfg.gapMs[1]));
}
send({ t: 'stopped', published: n });
// The runner asks for barriers after `stopped`; serve them until it disconnects (bounded: 10 min).
const until = Date.now() + 600_000;
while (Date.now() < until) {
  while (barriers.length > 0) {
    const ws = barriers.shift()!;
    await publishOnce(`${cfg.workerId}-barrier-${ws}-${n++}`, ws, null, true);
  }
  await sleep(20);
}
await publisher.close();
process.exit(0);
