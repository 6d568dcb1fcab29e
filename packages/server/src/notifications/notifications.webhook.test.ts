import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectClient, startTestServer, storeEngines, waitFor } from '../../test/support/vitest.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import {
  type NotificationWebhookBody,
  type NotificationWebhookOptions,
  signWebhook,
  verifyWebhook,
  WEBHOOK_HEADERS,
} from './notifications.webhook.js';

const engines = await storeEngines();
const SECRET = 'whsec-test-0123456789';
const DELAY = 60_000;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A real HTTP receiver on port 0 that answers 503 to the first `failFirst` requests. */
async function startReceiver(
  failFirst = 0,
): Promise<AsyncDisposable & { url: string; received: Received[]; delivered: () => Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = received.length < failFirst ? 503 : 204;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/pulse`,
    received,
    delivered: () => received.filter((r) => r.status === 204),
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const webhookOptions = (
  url: string,
  extra: Partial<NotificationWebhookOptions> = {},
): NotificationWebhookOptions => ({
  url,
  secret: SECRET,
  rules: {
    crisis: { priorities: ['urgent', 'high'], delayMs: DELAY },
    post_failed: { priorities: ['urgent'], delayMs: DELAY },
  },
  pollMs: 0,
  backoffMs: () => 1_000,
  maxAttempts: 5,
  ...extra,
});

const crisis = (topic: string, priority?: 'low' | 'normal' | 'high' | 'urgent') => ({
  type: 'crisis' as const,
  title: `Crisis: ${topic}`,
  ...(priority ? { priority } : { priority: 'urgent' as const }),
  data: { severity: 'critical' as const, topic, volume: 500 },
});

describe.each(engines)('the unseen-notification webhook on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'is sent once after the delay, retried after receiver failures with the same id, and its signature verifies',
    async () => {
      await using store = await engine.setup();
      await using receiver = await startReceiver(2);
      await using server = await startTestServer({
        ...store.options,
        notificationWebhook: webhookOptions(receiver.url),
      });
      const webhook = server.services.notifications.webhook;
      if (!webhook) throw new Error('webhook not configured');
      const sent = await server.services.notifications.send('system', {
        workspaceId: 'acme',
        userId: 'bob',
        ...crisis('outage'),
      });
      // Not escalating: a priority without a rule, a kind without a rule.
      await server.services.notifications.send('system', {
        workspaceId: 'acme',
        userId: 'bob',
        ...crisis('minor', 'normal'),
      });
      await server.publish.sendNotification('acme', 'bob', {
        type: 'alert',
        title: 'No rule',
        priority: 'urgent',
        data: { alertType: 'system', severity: 'critical', message: 'No rule' },
      });
      const t0 = Date.parse(sent.notification.createdAt);

      expect(await webhook.runDue(t0 + DELAY - 1)).toEqual({
        delivered: [],
        cancelled: [],
        retrying: [],
        gaveUp: [],
      });
      expect(receiver.received).toHaveLength(0);
      const key = `${sent.notification.id}:bob`;
      expect((await webhook.runDue(t0 + DELAY)).retrying).toEqual([key]);
      // Not due again before the backoff.
      expect((await webhook.runDue(t0 + DELAY + 999)).retrying).toEqual([]);
      expect((await webhook.runDue(t0 + DELAY + 1_000)).retrying).toEqual([key]);
      expect((await webhook.runDue(t0 + DELAY + 2_000)).delivered).toEqual([key]);
      expect(await webhook.runDue(t0 + DELAY + 3_600_000)).toEqual({
        delivered: [],
        cancelled: [],
        retrying: [],
        gaveUp: [],
      });
      expect(receiver.received.map((r) => r.status)).toEqual([503, 503, 204]);
      expect(receiver.received.map((r) => r.headers[WEBHOOK_HEADERS.attempt])).toEqual(['1', '2', '3']);
      for (const request of receiver.received) {
        expect(request.headers[WEBHOOK_HEADERS.id]).toBe(key);
        expect(request.headers['content-type']).toBe('application/json');
        const timestamp = request.headers[WEBHOOK_HEADERS.timestamp] as string;
        const signature = request.headers[WEBHOOK_HEADERS.signature] as string;
        expect(signature).toBe(signWebhook(SECRET, timestamp, request.body));
        expect(verifyWebhook({ secret: SECRET, body: request.body, timestamp, signature })).toBe(true);
        // A wrong secret, a changed body or an old timestamp do not verify.
        expect(verifyWebhook({ secret: 'other-secret', body: request.body, timestamp, signature })).toBe(
          false,
        );
        expect(verifyWebhook({ secret: SECRET, body: `${request.body} `, timestamp, signature })).toBe(false);
        expect(
          verifyWebhook({
            secret: SECRET,
            body: request.body,
            timestamp,
            signature,
            nowSeconds: Number(timestamp) + 301,
          }),
        ).toBe(false);
      }
      expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1);
      const body = JSON.parse(receiver.received[0]?.body ?? '{}') as NotificationWebhookBody;
      expect(body).toMatchObject({
        type: 'notification.unseen',
        id: key,
        workspaceId: 'acme',
        userId: 'bob',
        delayMs: DELAY,
        notification: {
          id: sent.notification.id,
          type: 'crisis',
          title: 'Crisis: outage',
          priority: 'urgent',
        },
      });
    },
  );

  it.skipIf(engine.unavailable)(
    'is never sent for a notification seen in time, nor to a user who muted the kind, and gives up after the last attempt',
    async () => {
      await using store = await engine.setup();
      await using receiver = await startReceiver(100);
      await using server = await startTestServer({
        ...store.options,
        notificationWebhook: webhookOptions(receiver.url, { maxAttempts: 2 }),
      });
      const webhook = server.services.notifications.webhook;
      if (!webhook) throw new Error('webhook not configured');
      const send = (input: Record<string, unknown>) =>
        server.services.notifications.send('system', {
          workspaceId: 'acme',
          ...crisis('x'),
          ...input,
        } as never);
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      const seenByBob = await send({ userId: 'bob', title: 'Seen by Bob' });
      const unseen = await send({ userId: 'bob', title: 'Unseen' });
      const wide = await send({ title: 'Everyone, seen by Alice' });
      await bob.trpc.notifications.markSeen.mutate({ workspaceId: 'acme', ids: [seenByBob.notification.id] });
      await alice.trpc.notifications.markSeen.mutate({ workspaceId: 'acme', all: true });
      // Carol muted post failures: nothing is owed to her.
      await using carol = connectClient(
        server,
        await server.token({ sub: 'carol', workspaces: { acme: 'member' } }),
      );
      await carol.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        kinds: { post_failed: false },
      });
      await send({
        userId: 'carol',
        type: 'post_failed',
        title: 'Muted',
        priority: 'urgent',
        data: { postId: 'p1', platform: 'x', error: 'boom' },
      });

      const t0 = Date.parse(wide.notification.createdAt);
      const first = await webhook.runDue(t0 + DELAY + 10);
      expect(first.cancelled.sort()).toEqual(
        [`${seenByBob.notification.id}:bob`, `${wide.notification.id}:*`].sort(),
      );
      expect(first.retrying).toEqual([`${unseen.notification.id}:bob`]);
      const second = await webhook.runDue(t0 + DELAY + 2_000);
      expect(second.gaveUp).toEqual([`${unseen.notification.id}:bob`]);
      expect(await webhook.runDue(t0 + DELAY + 3_600_000)).toEqual({
        delivered: [],
        cancelled: [],
        retrying: [],
        gaveUp: [],
      });
      expect(receiver.received.map((r) => r.headers[WEBHOOK_HEADERS.id])).toEqual([
        `${unseen.notification.id}:bob`,
        `${unseen.notification.id}:bob`,
      ]);
    },
  );

  it.skipIf(engine.unavailable)(
    'two nodes over one store deliver each notification exactly once',
    async () => {
      await using store = await engine.setup();
      await using receiver = await startReceiver(0);
      const bus = createMemoryBus();
      const node = (nodeId: string, pollMs: number) =>
        startTestServer({
          ...store.options,
          bus,
          config: { ...store.options.config, nodeId },
          notificationWebhook: webhookOptions(receiver.url, {
            pollMs,
            rules: { crisis: { priorities: ['urgent'], delayMs: pollMs ? 30 : DELAY } },
          }),
        });
      {
        // Both nodes claim the same due deliveries at the same moment.
        await using n1 = await node('n1', 0);
        await using n2 = await node('n2', 0);
        const ids: string[] = [];
        for (let i = 0; i < 12; i += 1) {
          const sent = await (i % 2 ? n1 : n2).services.notifications.send('system', {
            workspaceId: 'acme',
            userId: `user-${i % 3}`,
            ...crisis(`t${i}`),
          });
          ids.push(`${sent.notification.id}:user-${i % 3}`);
        }
        const at = Date.now() + DELAY + 1_000;
        const [a, b] = await Promise.all([
          n1.services.notifications.webhook?.runDue(at),
          n2.services.notifications.webhook?.runDue(at),
        ]);
        const delivered = [...(a?.delivered ?? []), ...(b?.delivered ?? [])];
        expect(delivered.sort()).toEqual([...ids].sort());
        expect(receiver.received.map((r) => r.headers[WEBHOOK_HEADERS.id]).sort()).toEqual([...ids].sort());
      }
      receiver.received.length = 0;
      {
        // With the pollers of both nodes running on their own.
        await using n1 = await node('n3', 10);
        await using n2 = await node('n4', 10);
        const ids: string[] = [];
        for (let i = 0; i < 10; i += 1) {
          const sent = await (i % 2 ? n1 : n2).services.notifications.send('system', {
            workspaceId: 'globex',
            userId: 'bob',
            ...crisis(`p${i}`),
          });
          ids.push(`${sent.notification.id}:bob`);
        }
        await waitFor(() => expect(receiver.received).toHaveLength(10), { timeoutMs: 10_000 });
        // Barrier: `runDue` waits for a node's pass under way, then makes one more. Once both return,
        // every poller pass that could have sent a second copy has finished, and neither found work.
        const [a, b] = await Promise.all([
          n1.services.notifications.webhook?.runDue(),
          n2.services.notifications.webhook?.runDue(),
        ]);
        expect(a?.delivered).toEqual([]);
        expect(b?.delivered).toEqual([]);
        expect(receiver.received.map((r) => r.headers[WEBHOOK_HEADERS.id]).sort()).toEqual([...ids].sort());
      }
    },
  );
});
