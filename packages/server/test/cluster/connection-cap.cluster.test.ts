import { describe, expect, it, vi } from 'vitest';
import {
  openRaw,
  type RawSocket,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
  clusterToken,
  type NodeProcess,
  startCluster,
  startPrivateRedis,
} from '../support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

let nextId = 1;

/**
 * Opens a socket for `token` on `node` and resolves how the server took it: 'accepted' once a query
 * over it is answered (the context was created and counted), or the close code it was refused with.
 */
async function connect(
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

describe.skipIf(unavailable)(
  'the per-user connection cap across real node processes (issue 18, item 6)',
  () => {
    it('counts a user’s sockets on every node: the 4th of a cap of 3 is refused with 4429; a SIGKILLed node’s slots free after the TTL', async () => {
      await using db = await createTestDatabase();
      await using nodes = await startCluster(
        { databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix: uniquePrefix() },
        2,
        { PULSE_MAX_CONNECTIONS_PER_USER: '3' },
      );
      const [a, b] = [nodes[0]!, nodes[1]!];
      const token = await clusterToken({ sub: 'carol', workspaces: { acme: 'member' } });
      const open: RawSocket[] = [];
      try {
        for (const node of [a, a, b]) {
          const { raw, outcome } = await connect(node, token);
          open.push(raw);
          expect(outcome).toBe('accepted');
        }
        // Node B holds one of carol's sockets only: per node it would let this one in.
        const fourth = await connect(b, token);
        expect(fourth.outcome).toBe(4429);
        const refusal = fourth.raw.messages.find((m) => m.error);
        expect(refusal?.error?.data?.code).toBe('TOO_MANY_REQUESTS');
        expect(refusal?.error?.message).toBe('Connection limit (3) reached for this user');

        // Another user is not affected by carol's count.
        const dave = await connect(b, await clusterToken({ sub: 'dave', workspaces: { acme: 'member' } }));
        expect(dave.outcome).toBe('accepted');
        open.push(dave.raw);

        // Closing one of carol's sockets on A frees a slot for a socket on B.
        await open.shift()!.close();
        await vi.waitFor(
          async () => {
            const next = await connect(b, token);
            if (next.outcome === 'accepted') open.push(next.raw);
            expect(next.outcome).toBe('accepted');
          },
          { timeout: 10_000, interval: 100 },
        );
        // At the cap again (A: 1, B: 2).
        const over = await connect(b, token);
        expect(over.outcome).toBe(4429);

        // Node A dies without a goodbye: its socket counts until A's heartbeat expires (TTL 2 s), then B
        // lets a new one in, and then no more than the cap.
        await a.kill('SIGKILL');
        await vi.waitFor(
          async () => {
            const next = await connect(b, token);
            if (next.outcome === 'accepted') open.push(next.raw);
            expect(next.outcome).toBe('accepted');
          },
          { timeout: 15_000, interval: 250 },
        );
        expect((await connect(b, token)).outcome).toBe(4429);
      } finally {
        await Promise.all(open.map((s) => s.close()));
      }
    });

    it('while Redis is down each node still caps its own sockets and lets users in (never refuses everyone); then counts across nodes again', async () => {
      await using db = await createTestDatabase();
      const redis = await startPrivateRedis();
      const open: RawSocket[] = [];
      try {
        await using nodes = await startCluster(
          { databaseUrl: db.url, redisUrl: redis.url, redisPrefix: uniquePrefix() },
          2,
          { PULSE_MAX_CONNECTIONS_PER_USER: '2', PULSE_PRESENCE_TTL_MS: '60000' },
        );
        const [a, b] = [nodes[0]!, nodes[1]!];
        const token = await clusterToken({ sub: 'erin', workspaces: { acme: 'member' } });
        const first = await connect(a, token);
        open.push(first.raw);
        expect(first.outcome).toBe('accepted');
        await redis.stop();
        const second = await connect(a, token);
        open.push(second.raw);
        expect(second.outcome).toBe('accepted');
        expect((await connect(a, token)).outcome).toBe(4429);
        // Node B knows none of erin's sockets while Redis is down: it lets her in (per-node count).
        const onB = await connect(b, token);
        expect(onB.outcome).toBe('accepted');
        await onB.raw.close();

        // Redis returns empty: node A writes back the socket it counted meanwhile, so node B sees both.
        await redis.start();
        await vi.waitFor(
          async () => {
            const next = await connect(b, token);
            // Until B's counter reconnects it counts on its own (lets her in): not kept.
            if (next.outcome === 'accepted') await next.raw.close();
            expect(next.outcome).toBe(4429);
          },
          { timeout: 10_000, interval: 200 },
        );
        // A closed socket on A frees its slot for B.
        await open.shift()!.close();
        await vi.waitFor(
          async () => {
            const next = await connect(b, token);
            if (next.outcome === 'accepted') open.push(next.raw);
            expect(next.outcome).toBe('accepted');
          },
          { timeout: 10_000, interval: 100 },
        );
        expect((await connect(a, token)).outcome).toBe(4429);
        await Promise.all(open.map((s) => s.close()));
      } finally {
        await redis.stop();
      }
    });
  },
);
