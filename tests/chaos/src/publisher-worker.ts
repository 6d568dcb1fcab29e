// A publisher in its own process (`createPublisher`): sends durable notifications with idempotency
// keys, retrying a failed send with the same key, and reports every outcome to the runner over IPC.
import { createPublisher, servicePrincipal } from '@pulse/server';
import { CHANNEL_RETENTION, chaosRouter, POSTS, postsChannel } from './channel.js';
import { createRng } from './prng.js';
import type { PublisherMessage, RunnerMessage, WorkerConfig } from './protocol.js';

const cfg = JSON.parse(process.env.PULSE_CHAOS_WORKER!) as WorkerConfig;
const rng = createRng(cfg.seed);
const extrasRng = rng.fork('extras');
const send = (m: PublisherMessage) => process.send?.(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const publisher = await createPublisher({
  databaseUrl: cfg.databaseUrl,
  redisUrl: cfg.redisUrl,
  redisPrefix: cfg.redisPrefix,
  router: chaosRouter,
  channels: [postsChannel],
  // NOTE: the SLA scheduler runs on the nodes only (slaPollMs 0 here); receive reads the SLA.
  config: {
    notifications: { retention: cfg.retention },
    inbox: { slaMs: cfg.slaMs, slaPollMs: 0, retention: CHANNEL_RETENTION },
    dashboardHistory: { rollupMs: 0 },
    nodeId: cfg.workerId,
  },
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

/** Up to `maxAttempts` calls of `fn` until one returns (a failed call is retried as it was). */
async function withRetry<T>(
  key: string,
  fn: () => Promise<T>,
): Promise<{ value: T; attempts: number } | null> {
  for (let attempt = 1; attempt <= cfg.maxAttempts; attempt++) {
    try {
      return { value: await fn(), attempts: attempt };
    } catch (error) {
      send({ t: 'retry', key, attempt, error: String((error as Error)?.message ?? error).slice(0, 200) });
      await sleep(Math.min(2_000, 100 * 2 ** attempt));
    }
  }
  send({ t: 'gaveup', key });
  return null;
}

/** A member who answers inbox conversations (the publisher acts for them, trusted server code). */
const agent = (workspaceId: string) => ({
  ...servicePrincipal(`${cfg.workerId}-agent`),
  service: false,
  workspaces: { [workspaceId]: 'member' as const },
});

async function publishChannel(i: number, dup: boolean) {
  const ws = extrasRng.pick(cfg.workspaces);
  const postId = extrasRng.pick(POSTS);
  const key = `${cfg.workerId}-ch-${i}`;
  const publishOne = async () => {
    const r = await withRetry(key, () =>
      publisher.channel(postsChannel, {
        workspaceId: ws.id,
        input: { postId },
        event: { pubKey: key, n: i },
        idempotencyKey: key,
      }),
    );
    if (r)
      send({
        t: 'channel-ack',
        key,
        workspaceId: ws.id,
        postId,
        id: r.value.id!,
        created: r.value.created,
        attempts: r.attempts,
      });
    return r;
  };
  if ((await publishOne()) && dup) await publishOne();
}

/** Conversations per workspace and publisher; each inbound message may be answered at once. */
const CONVERSATIONS = 4;
async function inboxRound(i: number) {
  const ws = extrasRng.pick(cfg.workspaces);
  const externalId = `${cfg.workerId}-conv-${extrasRng.int(0, CONVERSATIONS - 1)}`;
  const key = `${cfg.workerId}-in-${i}`;
  const r = await withRetry(key, () =>
    publisher.services.inbox.receive({
      workspaceId: ws.id,
      platform: 'email',
      externalId,
      contact: { id: externalId, name: externalId },
      body: `inbound ${key}`,
      platformMessageId: key,
    }),
  );
  if (!r) return;
  const ack = (op: 'receive' | 'reply', k: string, v: typeof r.value, attempts: number) =>
    send({
      t: 'inbox-ack',
      op,
      key: k,
      workspaceId: ws.id,
      conversationId: v.conversation.id,
      messageId: v.message.id,
      eventId: v.message.eventId,
      created: v.created,
      attempts,
    });
  ack('receive', key, r.value, r.attempts);
  // Half the messages are answered within the SLA (most of the time), the rest wait: they escalate.
  if (!extrasRng.chance(0.5)) return;
  await sleep(extrasRng.int(0, 400));
  const replyKey = `${cfg.workerId}-re-${i}`;
  const conversationId = r.value.conversation.id;
  const reply = await withRetry(replyKey, () =>
    publisher.services.inbox.send(agent(ws.id), {
      conversationId,
      body: `reply ${replyKey}`,
      clientMessageId: replyKey,
    }),
  );
  if (reply) ack('reply', replyKey, reply.value, reply.attempts);
}

/** Dashboard values: this publisher's own keys (one writer per key), latest value wins. */
async function dashboardSet(i: number) {
  const ws = extrasRng.pick(cfg.workspaces);
  const metric = `m${extrasRng.int(0, 3)}`;
  const key = `${cfg.workerId}-db-${i}`;
  const r = await withRetry(key, () =>
    publisher.broadcastMetricUpdate({
      workspaceId: ws.id,
      platform: 'instagram',
      accountId: cfg.workerId,
      metric,
      value: i,
    }),
  );
  if (r)
    send({
      t: 'dash-ack',
      workspaceId: ws.id,
      valueKey: r.value.event.key,
      at: r.value.event.at,
      applied: r.value.applied,
      attempts: r.attempts,
    });
}

const extras = (async () => {
  for (let i = 0; !stopping && i < cfg.maxPublishes; i++) {
    const roll = extrasRng();
    if (roll < 0.4) await publishChannel(i, extrasRng.chance(0.1));
    else if (roll < 0.7) await inboxRound(i);
    else await dashboardSet(i);
    await sleep(extrasRng.int(cfg.extrasGapMs[0], cfg.extrasGapMs[1]));
  }
})();

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
await extras;
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
