import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TRPCClientError } from '@trpc/client';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import type { AppRouter } from '../../src/router.js';
import {
  collect,
  connectClient,
  connectWsOnly,
  startTestServer,
  synced,
  startPrivateRedis,
  createTestDatabase,
  POSTGRES_ADMIN_URL,
  postgresUnavailable,
  redisUnavailable,
  expectDrained,
  expectHealthy,
  memoryLog,
} from '../support/vitest.js';

const codeOf = (error: unknown) => (error as TRPCClientError<AppRouter>).data?.code;

const alert = (title: string) => ({
  workspaceId: 'acme',
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

/** Cuts a private database off (existing sessions killed, new ones refused) and lets it back in. */
async function setReachable(url: string, reachable: boolean) {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`alter database ${name} allow_connections ${reachable ? 'true' : 'false'}`);
    if (!reachable)
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]);
  } finally {
    await admin.end();
  }
}

const pgDown = await postgresUnavailable();
const redisDown = await redisUnavailable();

describe('faults', () => {
  it.skipIf(pgDown)(
    'store unreachable: calls fail with INTERNAL_SERVER_ERROR, readyz is red, the node recovers after',
    async () => {
      await using db = await createTestDatabase();
      const { lines, logger } = memoryLog();
      await using server = await startTestServer({ config: { databaseUrl: db.url }, logger });
      const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
      await using alice = connectClient(server, token);
      const seen = collect<{ data: { type: string; notification?: { title: string } } }>();
      alice.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
      await synced(seen);
      await alice.trpc.notifications.send.mutate(alert('before'));
      await vi.waitFor(() => expect(seen.items).toHaveLength(1));
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

      await setReachable(db.url, false);
      try {
        await vi.waitFor(async () => expect((await fetch(`${server.url}/readyz`)).status).toBe(503), {
          timeout: 10_000,
        });
        await expect(alice.trpc.notifications.send.mutate(alert('during'))).rejects.toSatisfy(
          (e) => codeOf(e) === 'INTERNAL_SERVER_ERROR',
        );
        await expect(alice.trpc.notifications.list.query({ workspaceId: 'acme' })).rejects.toSatisfy(
          (e) => codeOf(e) === 'INTERNAL_SERVER_ERROR',
        );
        // REST answers with a JSON 500 that names no host or query.
        const rest = await fetch(`${server.url}/realtime/notifications/send`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(alert('during-rest')),
        });
        expect(rest.status).toBe(500);
        expect(await rest.json()).toEqual({
          error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' },
        });
        // The failure is logged with its request id and procedure, never with the token.
        const failures = lines.map((l) => JSON.parse(l)).filter((r) => r.msg === 'procedure failed');
        expect(failures).toContainEqual(
          expect.objectContaining({ level: 50, path: 'notifications.send', requestId: expect.any(String) }),
        );
        expect(lines.join('\n')).not.toContain(token);
        // Resuming a durable stream needs the store: it fails cleanly; the socket and everything in
        // memory keep working.
        await using bob = connectWsOnly(
          server.wsUrl,
          await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
        );
        const bobSeen = collect();
        bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '1' }, bobSeen);
        await vi.waitFor(() => expect(bobSeen.errors).toHaveLength(1), { timeout: 8_000 });
        expect(codeOf(bobSeen.errors[0])).toBe('INTERNAL_SERVER_ERROR');
        await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
        expect(await bob.trpc.presence.isOnline.query({ workspaceId: 'acme', userId: 'bob' })).toBe(true);
        await expectHealthy(server);
        await bob.close();
      } finally {
        await setReachable(db.url, true);
      }

      await vi.waitFor(async () => expect((await fetch(`${server.url}/readyz`)).status).toBe(200), {
        timeout: 10_000,
      });
      await vi.waitFor(() => alice.trpc.notifications.send.mutate(alert('after')), { timeout: 10_000 });
      await vi.waitFor(() =>
        expect(seen.items.map((i) => i.data.notification?.title)).toEqual(['before', 'after']),
      );
      await alice.close();
      await expectDrained(server);
      await server.close();
    },
  );

  it.skipIf(redisDown)(
    'bus unreachable: readyz is red, nothing crashes, live events flow again after',
    async () => {
      const redis = await startPrivateRedis();
      try {
        await using server = await startTestServer({
          config: { redisUrl: redis.url, redisPrefix: 'faults:' },
        });
        const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
        await using alice = connectWsOnly(server.wsUrl, token);
        const seen = collect<{ data: { type: string; notification?: { title: string } } }>();
        alice.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
        await synced(seen);
        await alice.trpc.notifications.send.mutate(alert('before'));
        await vi.waitFor(() => expect(seen.items).toHaveLength(1));

        await redis.stop();
        await vi.waitFor(async () => expect((await fetch(`${server.url}/readyz`)).status).toBe(503), {
          timeout: 10_000,
        });
        // Durable writes still commit to the store; every call answers (no hang, no crash).
        const during = await Promise.allSettled([
          alice.trpc.notifications.send.mutate(alert('during')),
          alice.trpc.notifications.list.query({ workspaceId: 'acme' }),
        ]);
        for (const r of during)
          if (r.status === 'rejected') expect(codeOf(r.reason)).toBe('INTERNAL_SERVER_ERROR');

        await redis.start();
        await vi.waitFor(async () => expect((await fetch(`${server.url}/readyz`)).status).toBe(200), {
          timeout: 15_000,
        });
        await vi.waitFor(() => alice.trpc.notifications.send.mutate(alert('after')), { timeout: 10_000 });
        // An accepted event is never lost: what committed while the bus was down arrives, in order.
        const accepted =
          during[0]!.status === 'fulfilled' ? ['before', 'during', 'after'] : ['before', 'after'];
        await vi.waitFor(
          () =>
            expect(
              seen.items.filter((i) => i.data.type === 'notification').map((i) => i.data.notification?.title),
            ).toEqual(accepted),
          { timeout: 10_000 },
        );
        await alice.close();
        await expectHealthy(server);
        await expectDrained(server);
      } finally {
        await redis.stop();
      }
    },
  );

  it('a restart under load: clients come back with jitter and miss nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-restart-'));
    try {
      const first = await startTestServer({ sqliteFile: 'pulse.db', config: { dataDir: dir } });
      const port = first.port;
      let current = first;
      const clients = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const token = await first.token({ sub: `u${i}`, workspaces: { acme: 'member' } });
          // Full jitter: clients spread their reconnects instead of arriving in the same instant.
          const client = connectClient(current, token, { retryDelayMs: () => 50 + Math.random() * 400 });
          const seen = collect<{ id: string; data: { type: string; notification?: { title: string } } }>();
          client.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
          return { client, seen };
        }),
      );
      await synced(...clients.map((c) => c.seen));

      const titles: string[] = [];
      const sendBatch = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          titles.push(`n${i}`);
          await current.caller.notifications.send(alert(`n${i}`));
        }
      };
      await sendBatch(0, 20);
      // Stop while clients are mid-stream; publish more right after the new node is up.
      const stopping = first.close({ graceMs: 100 });
      await stopping;
      current = await startTestServer({ sqliteFile: 'pulse.db', config: { dataDir: dir, port } });
      await sendBatch(20, 40);
      await vi.waitFor(() => expect(current.stats().transport.subscriptions).toBe(12), { timeout: 15_000 });
      await sendBatch(40, 50);

      for (const { seen } of clients) {
        await vi.waitFor(
          () => {
            const got = seen.items
              .filter((e) => e.data.type === 'notification')
              .map((e) => e.data.notification?.title);
            expect(got).toEqual(titles);
          },
          { timeout: 15_000 },
        );
        const ids = seen.items.map((e) => BigInt(e.id));
        expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : 1)));
      }
      await Promise.all(clients.map(({ client }) => client.close()));
      await expectHealthy(current);
      await expectDrained(current);
      await current.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
