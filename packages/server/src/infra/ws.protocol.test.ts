/**
 * Pulse's WebSocket transport speaks tRPC's wire protocol: the official client works unchanged, and
 * for the same router every frame matches the stock adapter's (`applyWSSHandler`), which is the
 * reference for anything the protocol leaves open.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, createWSClient, TRPCClientError, wsLink } from '@trpc/client';
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { z } from 'zod';
import { openRaw, type RawSocket, type WireMessage, collect } from '../../test/support/vitest.js';
import { createMemoryBus } from './bus/memory-bus.js';
import { Hub } from './hub.js';
import { idAfter, liveDurable, liveEphemeral } from './live.js';
import { attachWebSocket, type WsLimits, type WsTransport } from './ws.js';

interface Ctx {
  user: string | null;
}

/** A durable stream kept in memory: ids 1, 2, 3… published through the hub after they are stored. */
function createEventLog(hub: Hub) {
  const events: Array<{ id: string; n: number }> = [];
  return {
    events,
    async publish(n: number) {
      const id = String(events.length + 1);
      events.push({ id, n });
      await hub.publish('events', { n }, id);
    },
  };
}

function createTestRouter(hub: Hub, log: ReturnType<typeof createEventLog>) {
  const t = initTRPC.context<Ctx>().create({ isDev: false });
  return t.router({
    hello: t.procedure
      .input(z.object({ name: z.string().min(1) }))
      .query(({ input }) => `hello ${input.name}`),
    add: t.procedure
      .input(z.object({ a: z.number(), b: z.number() }))
      .mutation(({ input }) => input.a + input.b),
    whoami: t.procedure.query(({ ctx }) => {
      if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
      return ctx.user;
    }),
    forbidden: t.procedure.query(() => {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Not yours' });
    }),
    /** Fast path: a resumable LiveStream with tracked ids. */
    events: t.procedure
      .input(z.object({ lastEventId: z.string().nullish() }).optional())
      .subscription(({ input, signal }) =>
        liveDurable<{ n: number }>(hub, {
          topic: 'events',
          lastEventId: input?.lastEventId ?? undefined,
          signal,
          initial: async (afterId) =>
            log.events
              .filter((e) => afterId !== undefined && idAfter(e.id, afterId))
              .map((e) => ({ id: e.id, data: { n: e.n } })),
        }),
      ),
    /** Fast path, ephemeral: a snapshot, then updates. */
    ticks: t.procedure.subscription(({ signal }) =>
      liveEphemeral<{ tick: number }>(hub, {
        topic: 'ticks',
        signal,
        initial: async () => [{ data: { tick: 0 } }],
      }),
    ),
    /** Generic path: an async generator that ends by itself. */
    countdown: t.procedure
      .input(z.object({ from: z.number().int().min(1).max(5) }))
      .subscription(async function* ({ input }) {
        for (let i = input.from; i > 0; i--) yield tracked(String(i), { i });
      }),
    /** Generic path: yields once, then fails. */
    boom: t.procedure.subscription(async function* () {
      yield 'first';
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Boom' });
    }),
  });
}

type TestRouter = ReturnType<typeof createTestRouter>;

const limits: WsLimits = {
  maxPayloadBytes: 64 * 1024,
  maxBatch: 16,
  maxSubscriptions: 16,
  maxConnectionsPerUser: 100,
  authTimeoutMs: 5_000,
  pingMs: 30_000,
  pongWaitMs: 10_000,
  slowDropBytes: 256 * 1024,
  slowCloseBytes: 1024 * 1024,
};

interface Running {
  url: string;
  port: number;
  hub: Hub;
  log: ReturnType<typeof createEventLog>;
  transport?: WsTransport;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(http: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  return (http.address() as AddressInfo).port;
}

async function closeHttp(http: Server) {
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}

/** Pulse's transport on a tiny router. */
async function startPulse(
  opts: { limits?: Partial<WsLimits>; port?: number; hub?: Hub; log?: Running['log'] } = {},
) {
  const hub = opts.hub ?? new Hub(createMemoryBus());
  const log = opts.log ?? createEventLog(hub);
  const http = createServer();
  const transport = attachWebSocket<Ctx>(http, {
    router: createTestRouter(hub, log),
    limits: { ...limits, ...opts.limits },
    allowedOrigins: [],
    createContext: async ({ connectionParams }) => ({ user: connectionParams?.token ?? null }),
    identify: () => null,
  });
  const port = await listen(http, opts.port);
  let closed = false;
  const running: Running = {
    url: `ws://127.0.0.1:${port}/trpc`,
    port,
    hub,
    log,
    transport,
    async close() {
      if (closed) return;
      closed = true;
      await transport.shutdown(0);
      await closeHttp(http);
    },
  };
  cleanups.push(() => running.close());
  return running;
}

/** The stock adapter on the same router: the reference. */
async function startStock() {
  const hub = new Hub(createMemoryBus());
  const log = createEventLog(hub);
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: '/trpc' });
  const handler = applyWSSHandler({
    wss,
    router: createTestRouter(hub, log),
    createContext: ({ info }) => ({ user: (info.connectionParams?.token as string | undefined) ?? null }),
  });
  const port = await listen(http);
  const running: Running = {
    url: `ws://127.0.0.1:${port}/trpc`,
    port,
    hub,
    log,
    async close() {
      handler.broadcastReconnectNotification();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeHttp(http);
    },
  };
  cleanups.push(() => running.close());
  return running;
}

async function raw(server: Running, token: string | null = 'alice'): Promise<RawSocket> {
  const socket = await openRaw(server.url, { params: token === null ? null : { token } });
  cleanups.push(() => socket.close());
  return socket;
}

function officialClient(
  url: string,
  opts: {
    retryDelayMs?: number;
    WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  } = {},
) {
  const wsClient = createWSClient({
    url,
    WebSocket: (opts.WebSocket ?? WebSocket) as unknown as typeof globalThis.WebSocket,
    connectionParams: async () => ({ token: 'alice' }),
    retryDelayMs: () => opts.retryDelayMs ?? 20,
  });
  cleanups.push(() => wsClient.close());
  return createTRPCClient<TestRouter>({ links: [wsLink({ client: wsClient })] });
}

/** Frames with `id`, in arrival order, for comparing two servers. */
const framesFor = (socket: RawSocket, id: string | number) =>
  socket.messages.filter((m) => m.id === id).map((m) => JSON.parse(JSON.stringify(m)) as WireMessage);

/** Sends the same frames to Pulse and the stock adapter; returns both servers' answers per id. */
async function both(
  frames: unknown[],
  ids: Array<string | number>,
  expectCount: (id: string | number) => number = () => 1,
) {
  const [pulse, stock] = await Promise.all([startPulse(), startStock()]);
  const [p, s] = await Promise.all([raw(pulse), raw(stock)]);
  for (const frame of frames) {
    p.send(frame);
    s.send(frame);
  }
  await vi.waitFor(() => {
    for (const id of ids) {
      expect(framesFor(p, id)).toHaveLength(expectCount(id));
      expect(framesFor(s, id)).toHaveLength(expectCount(id));
    }
  });
  return { pulse: p, stock: s };
}

describe('Pulse WebSocket transport: tRPC wire protocol', () => {
  it('answers queries, mutations and errors frame for frame like the stock adapter', async () => {
    const frames = [
      { id: 1, method: 'query', params: { path: 'hello', input: { name: 'ada' } } },
      { id: 2, method: 'mutation', params: { path: 'add', input: { a: 2, b: 3 } } },
      { id: 3, method: 'query', params: { path: 'hello', input: { name: '' } } },
      { id: 4, method: 'query', params: { path: 'nope.missing', input: null } },
      { id: 5, method: 'query', params: { path: 'forbidden', input: null } },
      { id: 'six', jsonrpc: '2.0', method: 'query', params: { path: 'whoami', input: null } },
    ];
    const ids = [1, 2, 3, 4, 5, 'six'];
    const { pulse, stock } = await both(frames, ids);
    for (const id of ids) expect(framesFor(pulse, id)).toEqual(framesFor(stock, id));
    expect(framesFor(pulse, 1)[0]?.result).toEqual({ type: 'data', data: 'hello ada' });
    expect(framesFor(pulse, 2)[0]?.result).toEqual({ type: 'data', data: 5 });
    expect(framesFor(pulse, 3)[0]?.error?.data?.code).toBe('BAD_REQUEST');
    expect(framesFor(pulse, 4)[0]?.error?.data?.code).toBe('NOT_FOUND');
    expect(framesFor(pulse, 5)[0]?.error?.data?.code).toBe('FORBIDDEN');
    expect(framesFor(pulse, 'six')[0]).toMatchObject({ jsonrpc: '2.0', result: { data: 'alice' } });
  });

  it('answers every request of a batch frame, like the stock adapter', async () => {
    const batch = [
      { id: 1, method: 'query', params: { path: 'hello', input: { name: 'a' } } },
      { id: 2, method: 'mutation', params: { path: 'add', input: { a: 1, b: 1 } } },
      { id: 3, method: 'query', params: { path: 'forbidden', input: null } },
    ];
    const { pulse, stock } = await both([batch], [1, 2, 3]);
    for (const id of [1, 2, 3]) expect(framesFor(pulse, id)).toEqual(framesFor(stock, id));
    expect(framesFor(pulse, 3)[0]?.error?.data?.code).toBe('FORBIDDEN');
  });

  it('streams a LiveStream (fast path) with the stock frames: started, replay after lastEventId, live, stopped', async () => {
    const [pulse, stock] = await Promise.all([startPulse(), startStock()]);
    for (const server of [pulse, stock]) for (const n of [10, 20, 30]) await server.log.publish(n);
    const [p, s] = await Promise.all([raw(pulse), raw(stock)]);
    const subscribe = {
      id: 7,
      method: 'subscription',
      params: { path: 'events', input: {}, lastEventId: '1' },
    };
    p.send(subscribe);
    s.send(subscribe);
    // Replayed 2 and 3 after `started`.
    await vi.waitFor(() => {
      expect(framesFor(p, 7)).toHaveLength(3);
      expect(framesFor(s, 7)).toHaveLength(3);
    });
    for (const server of [pulse, stock]) await server.log.publish(40);
    await vi.waitFor(() => {
      expect(framesFor(p, 7)).toHaveLength(4);
      expect(framesFor(s, 7)).toHaveLength(4);
    });
    p.send({ id: 7, method: 'subscription.stop' });
    s.send({ id: 7, method: 'subscription.stop' });
    await vi.waitFor(() => {
      expect(framesFor(p, 7)).toHaveLength(5);
      expect(framesFor(s, 7)).toHaveLength(5);
    });
    expect(framesFor(p, 7)).toEqual(framesFor(s, 7));
    expect(framesFor(p, 7).map((m) => m.result)).toEqual([
      { type: 'started' },
      { type: 'data', id: '2', data: { id: '2', data: { n: 20 } } },
      { type: 'data', id: '3', data: { id: '3', data: { n: 30 } } },
      { type: 'data', id: '4', data: { id: '4', data: { n: 40 } } },
      { type: 'stopped' },
    ]);
    // Stopped means detached: the hub holds no sink for it, and nothing more arrives.
    expect(pulse.hub.stats().sinks).toBe(0);
    expect(pulse.transport?.stats().subscriptions).toBe(0);
    await pulse.log.publish(50);
    // Barrier: a new live subscription on the same socket, then a later event. The hub delivers a
    // topic's events in order, so had 7 still been attached, its frame for 50 would come before 8's 60.
    p.send({ id: 8, method: 'subscription', params: { path: 'events', input: {} } });
    await vi.waitFor(() => expect(pulse.hub.stats().sinks).toBe(1));
    await pulse.log.publish(60);
    await vi.waitFor(() =>
      expect(framesFor(p, 8).map((m) => m.result)).toEqual([
        { type: 'started' },
        { type: 'data', id: '6', data: { id: '6', data: { n: 60 } } },
      ]),
    );
    expect(framesFor(p, 7)).toHaveLength(5);
    expect(pulse.hub.stats().sinks).toBe(1);
  });

  it('ends a generator subscription with stopped, and a failing one with its error then stopped, like the stock adapter', async () => {
    const frames = [
      { id: 1, method: 'subscription', params: { path: 'countdown', input: { from: 2 } } },
      { id: 2, method: 'subscription', params: { path: 'boom', input: null } },
      { id: 3, method: 'subscription', params: { path: 'countdown', input: { from: 99 } } },
    ];
    const counts: Record<string, number> = { 1: 4, 2: 4, 3: 1 };
    const { pulse, stock } = await both(frames, [1, 2, 3], (id) => counts[String(id)] ?? 0);
    for (const id of [1, 2, 3]) expect(framesFor(pulse, id)).toEqual(framesFor(stock, id));
    expect(framesFor(pulse, 1).map((m) => m.result?.type)).toEqual(['started', 'data', 'data', 'stopped']);
    expect(framesFor(pulse, 2).map((m) => m.result?.type ?? m.error?.data?.code)).toEqual([
      'started',
      'data',
      'FORBIDDEN',
      'stopped',
    ]);
    expect(framesFor(pulse, 3)[0]?.error?.data?.code).toBe('BAD_REQUEST');
  });

  it('refuses a duplicate subscription id with the stock BAD_REQUEST, and keeps the first one', async () => {
    const [pulse, stock] = await Promise.all([startPulse(), startStock()]);
    const [p, s] = await Promise.all([raw(pulse), raw(stock)]);
    const subscribe = { id: 1, method: 'subscription', params: { path: 'events', input: {} } };
    for (const socket of [p, s]) socket.send(subscribe);
    await vi.waitFor(() => {
      expect(framesFor(p, 1)).toHaveLength(1);
      expect(framesFor(s, 1)).toHaveLength(1);
    });
    for (const socket of [p, s]) socket.send(subscribe);
    await vi.waitFor(() => {
      expect(framesFor(p, 1)).toHaveLength(2);
      expect(framesFor(s, 1)).toHaveLength(2);
    });
    expect(framesFor(p, 1)).toEqual(framesFor(s, 1));
    expect(framesFor(p, 1)[1]?.error).toMatchObject({
      message: 'Duplicate id 1',
      data: { code: 'BAD_REQUEST' },
    });
    await pulse.log.publish(1);
    await p.next((m) => m.id === 1 && m.result?.type === 'data');
    expect(pulse.hub.stats().sinks).toBe(1);
  });

  it('serves the official client: queries, mutations, subscriptions, typed errors', async () => {
    const server = await startPulse();
    const client = officialClient(server.url);
    expect(await client.hello.query({ name: 'grace' })).toBe('hello grace');
    expect(await client.add.mutate({ a: 20, b: 22 })).toBe(42);
    expect(await client.whoami.query()).toBe('alice');
    const error = await client.forbidden.query().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<TestRouter>).data?.code).toBe('FORBIDDEN');
    const invalid = await client.hello.query({ name: '' }).catch((e: unknown) => e);
    expect((invalid as TRPCClientError<TestRouter>).data?.code).toBe('BAD_REQUEST');

    const ticks = collect<{ tick: number }>();
    let started = 0;
    const sub = client.ticks.subscribe(undefined, { ...ticks, onStarted: () => started++ });
    await vi.waitFor(() => expect(ticks.items).toEqual([{ tick: 0 }]));
    await server.hub.publish('ticks', { tick: 1 });
    await vi.waitFor(() => expect(ticks.items).toEqual([{ tick: 0 }, { tick: 1 }]));
    expect(started).toBe(1);
    // unsubscribe sends subscription.stop: the server detaches the socket from the hub.
    sub.unsubscribe();
    await vi.waitFor(() => expect(server.hub.stats().sinks).toBe(0));
    expect(server.transport?.stats().subscriptions).toBe(0);
  });

  it('resumes a tracked stream after a dropped connection: the official client re-sends lastEventId, nothing lost or repeated', async () => {
    const server = await startPulse();
    // Reconnects after 300 ms: long enough to publish while it is away.
    const client = officialClient(server.url, { retryDelayMs: 300 });
    const seen = collect<{ id: string; data: { n: number } }>();
    client.events.subscribe({}, seen);
    await vi.waitFor(() => expect(server.hub.stats().sinks).toBe(1));
    await server.log.publish(1);
    await server.log.publish(2);
    await vi.waitFor(() => expect(seen.items.map((e) => e.id)).toEqual(['1', '2']));

    for (const socket of server.transport?.wss.clients ?? []) socket.terminate();
    await vi.waitFor(() => expect(server.hub.stats().sinks).toBe(0));
    await server.log.publish(3); // while disconnected: only in the store
    await vi.waitFor(() => expect(server.hub.stats().sinks).toBe(1));
    await server.log.publish(4);
    await vi.waitFor(() => expect(seen.items.map((e) => e.id)).toEqual(['1', '2', '3', '4']));
    expect(seen.items.map((e) => e.data.n)).toEqual([1, 2, 3, 4]);
    expect(seen.errors).toEqual([]);
  });

  it('tells clients to reconnect on shutdown; the official client leaves at once and resumes on the next server', async () => {
    const first = await startPulse();
    const client = officialClient(first.url);
    const seen = collect<{ id: string; data: { n: number } }>();
    client.events.subscribe({}, seen);
    await vi.waitFor(() => expect(first.hub.stats().sinks).toBe(1));
    await first.log.publish(1);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));

    // A long grace: if the client ignored the notice, its socket would stay until the grace ends.
    const shutdown = first.transport?.shutdown(20_000);
    await vi.waitFor(() => expect(first.transport?.stats().connections).toBe(0), { timeout: 5_000 });
    await shutdown;
    await first.close();

    // The next node on the same address shares the store: the client resumes after id 1.
    const second = await startPulse({ port: first.port, log: first.log, hub: first.hub });
    await vi.waitFor(() => expect(second.transport?.stats().subscriptions).toBe(1), { timeout: 5_000 });
    await second.log.publish(2);
    await vi.waitFor(() => expect(seen.items.map((e) => e.id)).toEqual(['1', '2']));
  });

  it('keeps answering clients alive with PING/PONG and terminates a client that never answers', async () => {
    const server = await startPulse({ limits: { pingMs: 60, pongWaitMs: 120 } });
    // Counts the official client's sockets and the PINGs they receive.
    let sockets = 0;
    let pings = 0;
    class CountingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets++;
        this.on('message', (data, isBinary) => {
          if (!isBinary && data.toString() === 'PING') pings++;
        });
      }
    }
    const client = officialClient(server.url, { WebSocket: CountingWebSocket });
    const ticks = collect<{ tick: number }>();
    client.ticks.subscribe(undefined, ticks);
    await vi.waitFor(() => expect(ticks.items).toHaveLength(1));

    const silent = await raw(server);
    silent.socket.removeAllListeners('ping');
    await silent.next((m) => m.text === 'PING');
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // terminated, no close frame

    // The official client answers every PING (wsLink replies PONG) and is still subscribed: two more
    // PINGs arrive on its one socket (the node sends the next only once the previous was answered).
    const seenPings = pings;
    await vi.waitFor(() => expect(pings).toBeGreaterThanOrEqual(seenPings + 2));
    expect(sockets).toBe(1);
    await server.hub.publish('ticks', { tick: 1 });
    await vi.waitFor(() => expect(ticks.items).toEqual([{ tick: 0 }, { tick: 1 }]));
    expect(server.transport?.stats().connections).toBe(1);
  });

  it('answers a client PING with PONG', async () => {
    const server = await startPulse();
    const socket = await raw(server);
    socket.send('PING');
    await socket.next((m) => m.text === 'PONG');
  });
});
