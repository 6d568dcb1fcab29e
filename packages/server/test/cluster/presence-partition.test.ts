import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { createRedisPresenceBackend } from '../../src/presence/presence.redis.js';
import { REDIS_URL, redisUnavailable, uniquePrefix } from '../support/vitest.js';
import { presenceEntry } from '../support/presence.js';

const unavailable = await redisUnavailable();

const entry = (userId: string, connectionId: string) => presenceEntry('n1', userId, connectionId);

/** A TCP proxy to the shared Redis that the test cuts (connections dropped, new ones refused) and restores. */
async function redisProxy() {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = tcpConnect(Number(target.port || 6379), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  };
  await listen();
  return {
    url: () => `redis://127.0.0.1:${port}`,
    async cut() {
      const s = server!;
      server = null;
      const closed = new Promise((resolve) => s.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    restore: listen,
    async close() {
      if (server) await this.cut();
    },
  };
}

describe.skipIf(unavailable)('presence in Redis across a partition (issue 18, item 6)', () => {
  it('answers from the node’s own entries while Redis is unreachable, and removes there what left meanwhile once it is back', async () => {
    const prefix = uniquePrefix();
    const proxy = await redisProxy();
    const node = createRedisPresenceBackend({ url: proxy.url(), prefix, nodeId: 'n1', ttlMs: 60_000 });
    // Another node's view, straight to Redis (it never loses it).
    const other = createRedisPresenceBackend({ url: REDIS_URL, prefix, nodeId: 'n2', ttlMs: 60_000 });
    try {
      await node.upsert('acme', entry('alice', 'a1'));
      await node.upsert('acme', entry('bob', 'b1'));
      expect((await other.list('acme')).map((u) => u.userId)).toEqual(['alice', 'bob']);
      let told = 0;
      node.onEntriesLost(() => {
        told++;
      });

      await proxy.cut();
      // Alice closes her socket and carol joins while the node cannot reach Redis: no error, a leave
      // and a join as this node sees them, and a list of its own entries.
      const left = await node.remove('acme', 'alice', 'a1');
      expect(left).toMatchObject({ before: { userId: 'alice' }, after: null });
      const joined = await node.upsert('acme', entry('carol', 'c1'));
      expect(joined).toMatchObject({ before: null, after: { userId: 'carol', status: 'online' } });
      expect((await node.list('acme')).map((u) => u.userId)).toEqual(['bob', 'carol']);
      expect(await node.get('acme', 'alice')).toBeNull();
      expect(await node.countOnline('acme')).toBe(2);
      // Redis itself still shows the old state: the other nodes did not hear of it.
      expect((await other.list('acme')).map((u) => u.userId)).toEqual(['alice', 'bob']);

      await proxy.restore();
      // Its next heartbeat that gets through asks the service to sweep, which writes the changes back.
      await vi.waitFor(() => expect(told).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
      const changes = await node.sweep(Date.now());
      const leaves = changes.filter((c) => c.before && !c.after).map((c) => c.userId);
      const joins = changes.filter((c) => !c.before && c.after).map((c) => c.userId);
      expect(leaves).toEqual(['alice']);
      expect(joins).toEqual(['carol']);
      expect((await other.list('acme')).map((u) => u.userId)).toEqual(['bob', 'carol']);
      // Reconciled once: the next sweep has nothing to say.
      expect(await node.sweep(Date.now())).toEqual([]);
    } finally {
      await node.close();
      await other.close();
      await proxy.close();
    }
  });
});
