/**
 * Conformance support: one test router, mounted on tRPC's stock `applyWSSHandler` or on Pulse's
 * `applyPulseWSSHandler` with the same options, each on its own HTTP server on port 0.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { applyWSSHandler, type Encoder } from '@trpc/server/adapters/ws';
import { observable } from '@trpc/server/observable';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { createMemoryBus } from '../../src/infra/bus/memory-bus.js';
import { Hub } from '../../src/infra/hub.js';
import { idAfter, liveDurable } from '../../src/infra/live.js';
import { applyPulseWSSHandler } from '../../src/infra/ws.js';

export type AdapterKind = 'stock' | 'pulse';
export const ADAPTERS: AdapterKind[] = ['stock', 'pulse'];

/** What `createContext` resolves to (it may also resolve to undefined, or be absent). */
export interface Ctx {
  user?: string | null;
}

/**
 * A tiny transformer of our own (superjson-style): Dates travel as `{ $date: iso }`. It always returns
 * new objects, as real transformers do.
 */
export const dateTransformer = {
  serialize: (value: unknown): unknown =>
    walk(value, (v) => (v instanceof Date ? { $date: v.toISOString() } : undefined)),
  deserialize: (value: unknown): unknown =>
    walk(value, (v) =>
      v !== null && typeof v === 'object' && typeof (v as { $date?: unknown }).$date === 'string'
        ? new Date((v as { $date: string }).$date)
        : undefined,
    ),
};

function walk(value: unknown, swap: (v: unknown) => unknown): unknown {
  const swapped = swap(value);
  if (swapped !== undefined) return swapped;
  if (Array.isArray(value)) return value.map((v) => walk(v, swap));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, swap);
    return out;
  }
  return value;
}

/** A binary encoder of our own: JSON as UTF-8 bytes in binary frames. */
export const bytesEncoder: Encoder = {
  encode: (data) => new TextEncoder().encode(JSON.stringify(data)) as Uint8Array<ArrayBuffer>,
  decode: (data) =>
    JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array)),
};

/** WeakRefs to what `big` yielded (memory-release scenario). */
export const yielded: Array<WeakRef<object>> = [];

/** A durable stream kept in memory (ids 1, 2, 3…), published through the hub after it is stored. */
export function createEventLog() {
  const hub = new Hub(createMemoryBus());
  const events: Array<{ id: string; n: number }> = [];
  return {
    hub,
    events,
    async publish(n: number) {
      const id = String(events.length + 1);
      events.push({ id, n });
      await hub.publish('events', { n }, id);
    },
  };
}

export function createConformanceRouter(
  opts: { transformer?: boolean; log?: ReturnType<typeof createEventLog> } = {},
) {
  const log = opts.log ?? createEventLog();
  const t = opts.transformer
    ? initTRPC.context<Ctx>().create({ isDev: false, transformer: dateTransformer })
    : initTRPC.context<Ctx>().create({ isDev: false });
  return t.router({
    hello: t.procedure
      .input(z.object({ name: z.string().min(1) }))
      .query(({ input }) => `hello ${input.name}`),
    add: t.procedure
      .input(z.object({ a: z.number(), b: z.number() }))
      .mutation(({ input }) => input.a + input.b),
    whoami: t.procedure.query(({ ctx }) => (ctx === undefined ? 'no context' : (ctx.user ?? null))),
    forbidden: t.procedure.query(() => {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Not yours' });
    }),
    when: t.procedure.query(() => ({ at: new Date(0), n: 1 })),
    echo: t.procedure
      .input(z.object({ at: z.date() }))
      .mutation(({ input }) => ({ at: input.at, year: input.at.getUTCFullYear() })),
    iterQuery: t.procedure.query(async function* () {
      yield 1;
    }),
    countdown: t.procedure
      .input(z.object({ from: z.number().int().min(1).max(5), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input }) {
        const after = input.lastEventId ? Number(input.lastEventId) : 0;
        for (let i = 1; i <= input.from; i++)
          if (i > after) yield tracked(String(i), { i, at: new Date(i * 1000) });
      }),
    ticks: t.procedure.subscription(() =>
      observable<number>((emit) => {
        for (let n = 1; n <= 3; n++) emit.next(n);
        emit.complete();
        return () => {};
      }),
    ),
    obsFail: t.procedure.subscription(() =>
      observable<number>((emit) => {
        emit.next(1);
        emit.error(new TRPCError({ code: 'FORBIDDEN', message: 'Observable refused' }));
        return () => {};
      }),
    ),
    genFail: t.procedure.subscription(async function* () {
      yield 'first';
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Boom' });
    }),
    forever: t.procedure.subscription(async function* ({ signal }) {
      yield 'ready';
      await new Promise((resolve) => signal?.addEventListener('abort', resolve));
    }),
    /** A Pulse LiveStream: the stock adapter iterates it; Pulse takes its fast path. */
    events: t.procedure
      .input(z.object({ lastEventId: z.string().nullish() }).optional())
      .subscription(({ input, signal }) =>
        liveDurable<{ n: number }>(log.hub, {
          topic: 'events',
          lastEventId: input?.lastEventId ?? undefined,
          signal,
          initial: async (afterId) =>
            log.events
              .filter((e) => afterId !== undefined && idAfter(e.id, afterId))
              .map((e) => ({ id: e.id, data: { n: e.n } })),
        }),
      ),
    notIterable: t.procedure.subscription(() => 42 as never),
    big: t.procedure.subscription(async function* ({ signal }) {
      for (let i = 0; i < 100; i++) {
        const value = { i, pad: String(i).padEnd(512 * 1024, 'x') };
        yielded.push(new WeakRef(value));
        yield value;
      }
      await new Promise((resolve) => signal?.addEventListener('abort', resolve));
    }),
  });
}

export type ConformanceRouter = ReturnType<typeof createConformanceRouter>;

export interface MountOptions {
  transformer?: boolean;
  createContext?: (opts: { info: { connectionParams: Record<string, string> | null } }) => unknown;
  keepAlive?: { enabled: boolean; pingMs?: number; pongWaitMs?: number };
  dangerouslyDisablePong?: boolean;
  experimental_encoder?: Encoder;
}

export interface Mounted {
  kind: AdapterKind;
  log: ReturnType<typeof createEventLog>;
  url: string;
  broadcastReconnectNotification(): void;
  close(): Promise<void>;
}

/** The router on one adapter, with exactly the options given (nothing Pulse-specific). */
export async function mount(kind: AdapterKind, opts: MountOptions = {}): Promise<Mounted> {
  const log = createEventLog();
  const router = createConformanceRouter({ transformer: opts.transformer, log });
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  const { transformer: _, ...handlerOpts } = opts;
  // biome-ignore lint/suspicious/noExplicitAny: the same loosely typed options go to both adapters
  const options = { wss, router, ...handlerOpts } as any;
  const handler = kind === 'stock' ? applyWSSHandler(options) : applyPulseWSSHandler(options);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    kind,
    log,
    url: `ws://127.0.0.1:${port}`,
    broadcastReconnectNotification: () => handler.broadcastReconnectNotification(),
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
