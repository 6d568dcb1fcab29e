/**
 * The transport's own limits (issue 12: items 4, 5, 7, 17, 19 and the "no exception escapes" class),
 * on a small router over real sockets: in-flight cap, per-IP cap on unauthenticated sockets, token
 * expiry past setTimeout's range, generic iterators that release what they yielded, durable queues
 * that end at once when their consumer stalls.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { initTRPC } from '@trpc/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { openRaw, type RawSocket, wireCode } from '../../test/support/vitest.js';
import { createMemoryBus } from './bus/memory-bus.js';
import { Hub } from './hub.js';
import { liveDurable, liveEphemeral } from './live.js';
import { attachWebSocket, closeReason, type WsLimits } from './ws.js';

interface Ctx {
  user: string | null;
}

const baseLimits: WsLimits = {
  maxPayloadBytes: 1024 * 1024,
  maxBatch: 64,
  maxSubscriptions: 16,
  maxConnectionsPerUser: 100,
  authTimeoutMs: 5_000,
  pingMs: 0,
  pongWaitMs: 10_000,
  slowDropBytes: 256 * 1024,
  slowCloseBytes: 64 * 1024 * 1024,
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function createRouter(hub: Hub) {
  const t = initTRPC.context<Ctx>().create({ isDev: false });
  let release: () => void = () => {};
  let gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const yielded: Array<WeakRef<object>> = [];
  const calls = { counted: 0, blob: 0 };
  return {
    yielded,
    calls,
    release: () => release(),
    reset: () => {
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    router: t.router({
      ping: t.procedure.query(() => 'pong'),
      slow: t.procedure.query(async () => {
        await gate;
        return 'done';
      }),
      bigint: t.procedure.query(() => ({ n: 1n })),
      blob: t.procedure.query(() => {
        calls.blob += 1;
        return 'x'.repeat(24 * 1024 * 1024);
      }),
      counted: t.procedure.query(() => ++calls.counted),
      /** 100 values of 512 KB, then waits (still subscribed) until stopped. */
      big: t.procedure.subscription(async function* ({ signal }) {
        for (let i = 0; i < 100; i++) {
          const value = { i, pad: String(i).padEnd(512 * 1024, 'x') };
          yielded.push(new WeakRef(value));
          yield value;
        }
        await new Promise((resolve) => signal?.addEventListener('abort', resolve));
      }),
      /** A durable LiveStream seen through a plain async generator (the generic path, as any adapter). */
      wrapped: t.procedure
        .input(z.object({ lastEventId: z.string().nullish() }).optional())
        .subscription(async function* ({ signal }) {
          yield* liveDurable<{ n: number; pad: string }>(hub, {
            topic: 'log',
            signal,
            queueLimit: 50,
            initial: async () => [],
          });
        }),
    }),
  };
}

async function startMini(
  limits: Partial<WsLimits> = {},
  identify?: (ctx: Ctx) => { userId: string; expiresAt: number } | null,
) {
  const hub = new Hub(createMemoryBus());
  const router = createRouter(hub);
  const http = createServer();
  /** The server's side of every upgraded socket, in order. */
  const upgraded: Duplex[] = [];
  /** Every upgrade request, weakly (to prove the transport does not keep them). */
  const requests: Array<WeakRef<IncomingMessage>> = [];
  http.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    upgraded.push(socket);
    requests.push(new WeakRef(req));
  });
  const transport = attachWebSocket<Ctx>(http, {
    router: router.router,
    limits: { ...baseLimits, ...limits },
    allowedOrigins: [],
    createContext: async ({ connectionParams }) => ({ user: connectionParams?.token ?? null }),
    identify,
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/trpc`;
  cleanups.push(async () => {
    await transport.shutdown(0);
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { ...router, hub, url, transport, upgraded, requests };
}

async function raw(url: string, opts: Parameters<typeof openRaw>[1] = { params: { token: 'alice' } }) {
  const socket = await openRaw(url, opts);
  cleanups.push(() => socket.close());
  return socket;
}

const query = (id: number, path: string) => ({ id, method: 'query', params: { path, input: undefined } });

describe('transport limits', () => {
  it('caps queries in flight per connection with TOO_MANY_REQUESTS', async () => {
    const server = await startMini({ maxInFlight: 4 });
    const socket = await raw(server.url);
    socket.send([1, 2, 3, 4, 5, 6].map((id) => query(id, 'slow')));
    const refused = await socket.next((m) => m.id === 5);
    expect(wireCode(refused)).toBe('TOO_MANY_REQUESTS');
    expect(refused.error?.message).toBe('Too many requests in flight (limit 4) on this connection');
    expect(wireCode(await socket.next((m) => m.id === 6))).toBe('TOO_MANY_REQUESTS');
    server.release();
    for (const id of [1, 2, 3, 4]) expect((await socket.next((m) => m.id === id)).result?.data).toBe('done');
    // Answered requests free their slots.
    socket.send(query(7, 'ping'));
    expect((await socket.next((m) => m.id === 7)).result?.data).toBe('pong');
  });

  it('caps unauthenticated sockets per IP (HTTP 429); authenticating frees the slot', async () => {
    const server = await startMini({ maxUnauthenticatedPerIp: 2 });
    const first = await raw(server.url, { params: false });
    await raw(server.url, { params: false });
    await expect(openRaw(server.url, { params: false })).rejects.toThrow('HTTP 429');
    first.send({ method: 'connectionParams', data: { token: 'alice' } });
    first.send(query(1, 'ping'));
    expect((await first.next((m) => m.id === 1)).result?.data).toBe('pong');
    const third = await raw(server.url, { params: { token: 'bob' } });
    third.send(query(1, 'ping'));
    expect((await third.next((m) => m.id === 1)).result?.data).toBe('pong');
  });

  it('a token valid longer than setTimeout can wait (24.8 days) is not closed early', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const day = 24 * 3600 * 1000;
    const expiresAt = Date.now() + 30 * day;
    const server = await startMini({}, (ctx) => (ctx.user ? { userId: ctx.user, expiresAt } : null));
    const socket = await raw(server.url);
    socket.send(query(1, 'ping'));
    await socket.next((m) => m.id === 1);
    vi.advanceTimersByTime(25 * day);
    socket.send(query(2, 'ping'));
    expect((await socket.next((m) => m.id === 2)).result?.data).toBe('pong');
    vi.advanceTimersByTime(5 * day + 1_000);
    const closed = await socket.closed;
    expect(closed).toEqual({ code: 4401, reason: 'Token expired' });
  });

  it('stops reading a socket while its send buffer is over the drop mark, resumes when drained', async () => {
    const server = await startMini({ slowDropBytes: 64 * 1024 });
    const socket = await raw(server.url);
    socket.send(query(1, 'counted'));
    await socket.next((m) => m.id === 1);
    socket.socket.pause();
    socket.send(query(2, 'blob'));
    // Once the resolver returned, its reply is written (same microtask chain) and over the drop
    // mark: frames sent from now on wait in the socket, the server takes no new work meanwhile.
    await vi.waitFor(() => expect(server.calls.blob).toBe(1));
    let sent = 0;
    for (let id = 3; id < 13; id++) {
      socket.send(query(id, 'counted'));
      sent += Buffer.byteLength(JSON.stringify(query(id, 'counted'))) + 6; // 2-byte header + mask
    }
    // Every one of these frames has reached the server and sits unread in its socket's buffer (a
    // socket that reads would leave none there): no new work is taken while the client does not read.
    expect(server.upgraded).toHaveLength(1);
    await vi.waitFor(() => expect(server.upgraded[0]?.readableLength).toBe(sent));
    expect(server.calls.counted).toBe(1);
    socket.socket.resume();
    const last = await socket.next((m) => m.id === 12);
    expect(last.result?.data).toBe(11);
    expect(server.calls.counted).toBe(11);
  });

  it('a result that cannot be serialised fails that request only (no unhandled rejection)', async () => {
    const server = await startMini();
    const socket = await raw(server.url);
    socket.send(query(1, 'bigint'));
    const failed = await socket.next((m) => m.id === 1);
    expect(wireCode(failed)).toBe('INTERNAL_SERVER_ERROR');
    socket.send(query(2, 'ping'));
    expect((await socket.next((m) => m.id === 2)).result?.data).toBe('pong');
  });

  it('a generic iterator does not keep the values it yielded reachable', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await startMini();
    const socket = await raw(server.url);
    socket.send({ id: 1, method: 'subscription', params: { path: 'big', input: undefined } });
    await vi.waitFor(
      () => expect(socket.messages.filter((m) => m.id === 1 && m.result?.type === 'data')).toHaveLength(100),
      { timeout: 20_000 },
    );
    socket.messages.length = 0;
    expect(server.yielded).toHaveLength(100);
    await vi.waitFor(() => {
      gc();
      // Still subscribed: at most the value of the current step may be held, as the stock adapter.
      expect(server.yielded.filter((ref) => ref.deref() !== undefined).length).toBeLessThanOrEqual(1);
    });
  });

  it.each([
    ['without', {}],
    ['with', { maxPendingHandshakes: 8 }],
  ] as const)(
    'an open socket does not keep its upgrade request reachable (%s a handshake limit)',
    async (_, limits) => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const server = await startMini(limits);
      const sockets = [await raw(server.url), await raw(server.url, { params: false })];
      sockets[1]?.send({ method: 'connectionParams', data: { token: 'bob' } });
      for (const socket of sockets) {
        socket.send({ id: 1, method: 'subscription', params: { path: 'wrapped', input: {} } });
        await socket.next((m) => m.id === 1 && m.result?.type === 'started');
      }
      expect(server.requests).toHaveLength(2);
      // Still open and subscribed: headers, URL and readable state of the request are garbage (≈1 KB per socket).
      await vi.waitFor(() => {
        gc();
        expect(server.requests.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
      });
      for (const socket of sockets) {
        socket.send(query(2, 'ping'));
        expect((await socket.next((m) => m.id === 2)).result?.data).toBe('pong');
      }
    },
  );

  it('a durable stream whose consumer stalls drops its queue and leaves the hub at once', async () => {
    const server = await startMini({ slowDropBytes: 64 * 1024 });
    const socket: RawSocket = await raw(server.url);
    socket.send({ id: 1, method: 'subscription', params: { path: 'wrapped', input: {} } });
    await socket.next((m) => m.id === 1 && m.result?.type === 'started');
    await vi.waitFor(() => expect(server.hub.stats().sinks).toBe(1));
    socket.socket.pause();
    const pad = 'x'.repeat(8 * 1024);
    for (let n = 1; n <= 2_000 && server.hub.stats().sinks > 0; n++)
      await server.hub.publish('log', { n, pad }, String(n));
    // Detached while the client still does not read: nothing of the stream is held for it.
    expect(server.hub.stats().sinks).toBe(0);
    socket.socket.resume();
    const error = await socket.next((m) => m.id === 1 && m.error !== undefined);
    expect(wireCode(error)).toBe('TOO_MANY_REQUESTS');
    expect(error.error?.message).toBe('Consumer too slow; resume with lastEventId');
    const data = socket.messages.filter((m) => m.id === 1 && m.result?.type === 'data');
    expect(data.length).toBeLessThan(2_000);
    // The last id delivered is where the client resumes.
    expect(data.at(-1)?.result?.id).toBe(String(data.length));
  });

  it('an ephemeral stream keeps at most its queue limit (newest per coalesce key) for a stalled reader', async () => {
    const hub = new Hub(createMemoryBus());
    const stream = liveEphemeral<{ key: string; n: number }>(hub, {
      topic: 'eph',
      queueLimit: 10,
      coalesceKey: (data) => data.key,
      initial: async () => [{ data: { key: 'snapshot', n: 0 } }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ key: 'snapshot', n: 0 });
    for (let n = 1; n <= 100; n++) await hub.publish('eph', { key: `k${n % 3}`, n });
    for (let n = 101; n <= 200; n++) await hub.publish('eph', { key: `u${n}`, n });
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push(((await iterator.next()).value as { n: number }).n);
    // Only the 10 newest distinct keys survive.
    expect(seen).toEqual([191, 192, 193, 194, 195, 196, 197, 198, 199, 200]);
    await iterator.return?.();
    expect(hub.stats().sinks).toBe(0);
  });

  it('close reasons are cut to 123 UTF-8 bytes on a character boundary', () => {
    expect(closeReason('short')).toBe('short');
    expect(closeReason('a'.repeat(200))).toBe('a'.repeat(123));
    const accented = closeReason('é'.repeat(100));
    expect(accented).toBe('é'.repeat(61));
    expect(Buffer.byteLength(accented)).toBe(122);
    const emoji = closeReason(`${'a'.repeat(121)}😀`);
    expect(emoji).toBe('a'.repeat(121));
  });
});
