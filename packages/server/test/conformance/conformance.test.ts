/**
 * Conformance (issue 13 §2): every scenario runs against tRPC's stock `applyWSSHandler` and Pulse's
 * `applyPulseWSSHandler`, each mounted with the same router and options on its own server, and
 * compares what each side sends, frame by frame, and what the official client gets. The stock
 * adapter is the reference; the only normalisation is noted where it is applied (docs/transport.md
 * lists every deliberate difference).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createTRPCClient, createWSClient, type TRPCClientError, wsLink } from '@trpc/client';
import { TRPCError } from '@trpc/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { openRaw, type RawSocket, type WireMessage } from '../support/vitest.js';
import {
  ADAPTERS,
  type AdapterKind,
  bytesEncoder,
  type ConformanceRouter,
  dateTransformer,
  type MountOptions,
  type Mounted,
  mount,
  yielded,
} from './support.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(kind: AdapterKind, opts: MountOptions = {}): Promise<Mounted> {
  const server = await mount(kind, opts);
  cleanups.push(() => server.close());
  return server;
}

async function raw(server: Mounted, opts: Parameters<typeof openRaw>[1] = { noParamsMode: true }) {
  const socket = await openRaw(server.url, opts);
  cleanups.push(() => socket.close());
  return socket;
}

/** Runs `scenario` on both adapters; Pulse's outcome must equal the stock adapter's. */
async function onBoth<T>(opts: MountOptions, scenario: (server: Mounted) => Promise<T>): Promise<T> {
  const outcomes = {} as Record<AdapterKind, T>;
  for (const kind of ADAPTERS) outcomes[kind] = await scenario(await start(kind, opts));
  expect(outcomes.pulse).toEqual(outcomes.stock);
  return outcomes.stock;
}

/** Waits until `done` holds for the frames received, then returns them. */
async function framesUntil(
  socket: RawSocket,
  done: (frames: WireMessage[]) => boolean,
): Promise<WireMessage[]> {
  await vi.waitFor(() => expect(done(socket.messages)).toBe(true), { timeout: 5_000, interval: 5 });
  return [...socket.messages];
}

const answered =
  (...ids: Array<string | number>) =>
  (frames: WireMessage[]) =>
    ids.every((id) =>
      frames.some(
        (f) => f.id === id && (f.error || f.result?.type === 'data' || f.result?.type === 'stopped'),
      ),
    );
const stopped =
  (...ids: Array<string | number>) =>
  (frames: WireMessage[]) =>
    ids.every((id) => frames.some((f) => f.id === id && f.result?.type === 'stopped'));
const q = (id: number, path: string, input?: unknown, method = 'query') => ({
  id,
  method,
  params: { path, input },
});
const sub = (id: number, path: string, input?: unknown, lastEventId?: string) => ({
  id,
  method: 'subscription',
  params: { path, input, ...(lastEventId === undefined ? {} : { lastEventId }) },
});
const byId = (frames: WireMessage[]) => [...frames].sort((a, b) => String(a.id).localeCompare(String(b.id)));
const fromParams = {
  createContext: ({ info }: { info: { connectionParams: Record<string, string> | null } }) => ({
    user: info.connectionParams?.token ?? null,
  }),
};

function client(
  server: Mounted,
  opts: Partial<Parameters<typeof createWSClient>[0]> = {},
  link: { transformer?: typeof dateTransformer } = {},
) {
  const wsClient = createWSClient({
    url: server.url,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    retryDelayMs: () => 60_000,
    ...opts,
  });
  cleanups.push(() => wsClient.close());
  const trpc = createTRPCClient<ConformanceRouter>({
    // biome-ignore lint/suspicious/noExplicitAny: the transformer option's type depends on the router
    links: [wsLink({ client: wsClient, ...(link as any) })],
  });
  return { wsClient, trpc };
}

describe.each([['raw frames']])('conformance: %s', () => {
  it('queries, mutations and their errors in one batch', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send([
        q(1, 'hello', { name: 'a' }),
        q(2, 'add', { a: 1, b: 2 }, 'mutation'),
        q(3, 'hello', { name: '' }),
        q(4, 'forbidden'),
        q(5, 'nope'),
        q(6, 'iterQuery'),
        q(7, 'hello', { name: 'jsonrpc' }),
      ]);
      // NOTE: normalised: replies sorted by id (each is answered when its procedure settles).
      return byId(await framesUntil(socket, answered(1, 2, 3, 4, 5, 6, 7)));
    });
    expect(frames.map((f) => f.result?.data ?? f.error?.data?.code)).toEqual([
      'hello a',
      3,
      'BAD_REQUEST',
      'FORBIDDEN',
      'NOT_FOUND',
      'UNSUPPORTED_MEDIA_TYPE',
      'hello jsonrpc',
    ]);
  });

  it('async-generator subscriptions with tracked ids, resumed with lastEventId', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send(sub(1, 'countdown', { from: 3 }));
      await framesUntil(socket, stopped(1));
      socket.send(sub(2, 'countdown', { from: 3 }, '1'));
      return framesUntil(socket, stopped(2));
    });
    expect(frames.map((f) => `${f.id}:${f.result?.type}:${f.result?.id ?? ''}`)).toEqual([
      '1:started:',
      '1:data:1',
      '1:data:2',
      '1:data:3',
      '1:stopped:',
      '2:started:',
      '2:data:2',
      '2:data:3',
      '2:stopped:',
    ]);
  });

  it('observable subscriptions (values, completion, error) and failing generators', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send(sub(1, 'ticks'));
      await framesUntil(socket, stopped(1));
      socket.send(sub(2, 'obsFail'));
      await framesUntil(socket, stopped(2));
      socket.send(sub(3, 'genFail'));
      await framesUntil(socket, stopped(3));
      socket.send(sub(4, 'notIterable'));
      return framesUntil(socket, answered(4));
    });
    expect(
      frames.map(
        (f) => `${f.id}:${f.result?.type ?? f.error?.data?.code}:${JSON.stringify(f.result?.data ?? null)}`,
      ),
    ).toEqual([
      '1:started:null',
      '1:data:1',
      '1:data:2',
      '1:data:3',
      '1:stopped:null',
      '2:started:null',
      '2:data:1',
      '2:FORBIDDEN:null',
      '2:stopped:null',
      '3:started:null',
      '3:data:"first"',
      '3:FORBIDDEN:null',
      '3:stopped:null',
      '4:INTERNAL_SERVER_ERROR:null',
    ]);
  });

  it('a LiveStream (Pulse fast path) sends what the stock adapter sends iterating it', async () => {
    const frames = await onBoth({}, async (server) => {
      await server.log.publish(10);
      await server.log.publish(20);
      const socket = await raw(server);
      socket.send(sub(1, 'events', {}, '1'));
      await framesUntil(socket, (fs) => fs.some((f) => f.result?.id === '2'));
      await server.log.publish(30);
      await framesUntil(socket, (fs) => fs.some((f) => f.result?.id === '3'));
      socket.send({ id: 1, method: 'subscription.stop' });
      return framesUntil(socket, stopped(1));
    });
    expect(frames).toEqual([
      { id: 1, result: { type: 'started' } },
      { id: 1, result: { type: 'data', id: '2', data: { id: '2', data: { n: 20 } } } },
      { id: 1, result: { type: 'data', id: '3', data: { id: '3', data: { n: 30 } } } },
      { id: 1, result: { type: 'stopped' } },
    ]);
  });

  it('subscription.stop, and a duplicate subscription id', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send(sub(1, 'forever'));
      await framesUntil(socket, (fs) => fs.some((f) => f.result?.data === 'ready'));
      socket.send(sub(1, 'forever'));
      await framesUntil(socket, (fs) => fs.some((f) => f.error));
      socket.send({ id: 1, method: 'subscription.stop' });
      return framesUntil(socket, stopped(1));
    });
    expect(frames.map((f) => f.result?.type ?? f.error?.message)).toEqual([
      'started',
      'data',
      'Duplicate id 1',
      'stopped',
    ]);
  });

  it('malformed JSON, binary frames, a missing id', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send('{"id":1,"method":');
      await framesUntil(socket, (fs) => fs.length === 1);
      socket.send(Buffer.from('{"id":2}'));
      await framesUntil(socket, (fs) => fs.length === 2);
      socket.send({ id: null, method: 'query', params: { path: 'hello', input: { name: 'x' } } });
      await framesUntil(socket, (fs) => fs.length === 3);
      // The socket stays usable.
      socket.send(q(4, 'hello', { name: 'after' }));
      return framesUntil(socket, answered(4));
    });
    expect(frames.map((f) => `${f.id}:${f.error?.data?.code ?? f.result?.data}`)).toEqual([
      'null:PARSE_ERROR',
      'null:PARSE_ERROR',
      'null:PARSE_ERROR',
      '4:hello after',
    ]);
  });

  it.each([
    ['not JSON', 'hello'],
    ['a non-object message', '"x"'],
    ['non-string values', JSON.stringify({ method: 'connectionParams', data: { token: 1 } })],
    ['an array as data', JSON.stringify({ method: 'connectionParams', data: ['a'] })],
    ['no data at all', JSON.stringify({ method: 'connectionParams' })],
  ])('bad connectionParams (%s): same error and close code', async (_, first) => {
    const outcome = await onBoth(fromParams, async (server) => {
      const socket = await raw(server, { params: false });
      socket.send(first);
      const { code } = await socket.closed;
      return { code, frames: socket.messages };
    });
    expect(outcome.code).toBe(1005);
    expect(outcome.frames).toHaveLength(1);
    expect(outcome.frames[0]?.error?.data?.code).toBe('PARSE_ERROR');
  });

  it('connectionParams null and a valid object', async () => {
    const frames = await onBoth(fromParams, async (server) => {
      const a = await raw(server, { params: null });
      a.send(q(1, 'whoami'));
      const b = await raw(server, { params: { token: 'alice' } });
      b.send(q(1, 'whoami'));
      return [...(await framesUntil(a, answered(1))), ...(await framesUntil(b, answered(1)))];
    });
    expect(frames.map((f) => f.result?.data)).toEqual([null, 'alice']);
  });

  it('createContext failure: the refusal, then each waiting request gets it, then the close', async () => {
    const refuse = {
      createContext: async () => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'No entry' });
      },
    };
    const outcome = await onBoth(refuse, async (server) => {
      const socket = await raw(server, { params: { token: 'x' } });
      socket.send([q(1, 'hello', { name: 'a' }), sub(2, 'countdown', { from: 1 })]);
      const { code } = await socket.closed;
      return { code, frames: socket.messages };
    });
    expect(outcome.code).toBe(1005);
    expect(outcome.frames.map((f) => `${f.id}:${f.error?.data?.code}:${f.error?.message}`)).toEqual([
      'null:UNAUTHORIZED:No entry',
      '1:UNAUTHORIZED:No entry',
      '2:UNAUTHORIZED:No entry',
    ]);
  });

  it('createContext resolving to undefined, or none at all: requests are served', async () => {
    for (const opts of [{ createContext: () => undefined }, {}]) {
      const frames = await onBoth(opts, async (server) => {
        const socket = await raw(server);
        socket.send(q(1, 'whoami'));
        return framesUntil(socket, answered(1));
      });
      expect(frames[0]?.result?.data).toBe('no context');
    }
  });

  it('a router with a transformer: results, inputs, tracked data and errors go through it', async () => {
    const frames = await onBoth({ transformer: true }, async (server) => {
      const socket = await raw(server);
      socket.send([
        q(1, 'when'),
        q(2, 'echo', dateTransformer.serialize({ at: new Date('2020-01-02T00:00:00Z') }), 'mutation'),
        q(3, 'forbidden'),
      ]);
      await framesUntil(socket, answered(1, 2, 3));
      socket.send(sub(4, 'countdown', { from: 2 }));
      return byId(await framesUntil(socket, stopped(4)));
    });
    expect(frames[0]?.result?.data).toEqual({ at: { $date: '1970-01-01T00:00:00.000Z' }, n: 1 });
    expect(frames[1]?.result?.data).toEqual({ at: { $date: '2020-01-02T00:00:00.000Z' }, year: 2020 });
    expect(frames[2]?.error?.data?.code).toBe('FORBIDDEN');
    expect(frames.find((f) => f.id === 4 && f.result?.id === '2')?.result?.data).toEqual({
      id: '2',
      data: { i: 2, at: { $date: '1970-01-01T00:00:02.000Z' } },
    });
  });

  it('the reconnect notification', async () => {
    const frames = await onBoth({}, async (server) => {
      const socket = await raw(server);
      socket.send(q(1, 'hello', { name: 'a' }));
      await framesUntil(socket, answered(1));
      server.broadcastReconnectNotification();
      return framesUntil(socket, (fs) => fs.length === 2);
    });
    expect(frames[1]).toEqual({ id: null, method: 'reconnect' });
  });

  it('keep-alive, server to client: PING, then terminate a socket that never answers', async () => {
    const outcome = await onBoth(
      { keepAlive: { enabled: true, pingMs: 60, pongWaitMs: 60 } },
      async (server) => {
        const socket = await raw(server);
        const { code } = await socket.closed;
        return { code, frames: socket.messages };
      },
    );
    expect(outcome).toEqual({ code: 1006, frames: [{ text: 'PING' }] });
  });

  it('keep-alive, client to server: PONG, or none with dangerouslyDisablePong', async () => {
    for (const dangerouslyDisablePong of [false, true]) {
      const frames = await onBoth({ dangerouslyDisablePong }, async (server) => {
        const socket = await raw(server);
        socket.send('PING');
        socket.send(q(1, 'hello', { name: 'a' }));
        return framesUntil(socket, answered(1));
      });
      expect(frames.map((f) => f.text ?? f.result?.data)).toEqual(
        dangerouslyDisablePong ? ['hello a'] : ['PONG', 'hello a'],
      );
    }
  });
});

describe('conformance: the official client', () => {
  it('queries, mutations, subscriptions, connectionParams (sync and async)', async () => {
    const results = await onBoth(fromParams, async (server) => {
      const sync = client(server, { connectionParams: { token: 'sync' } }).trpc;
      const lazyAsync = client(server, { connectionParams: async () => ({ token: 'async' }) }).trpc;
      const seen: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        sync.countdown.subscribe(
          { from: 3 },
          { onData: (d) => seen.push(d), onError: reject, onComplete: resolve },
        );
      });
      return {
        hello: await sync.hello.query({ name: 'a' }),
        add: await sync.add.mutate({ a: 2, b: 3 }),
        whoSync: await sync.whoami.query(),
        whoAsync: await lazyAsync.whoami.query(),
        seen,
      };
    });
    expect(results).toMatchObject({ hello: 'hello a', add: 5, whoSync: 'sync', whoAsync: 'async' });
    expect(results.seen).toHaveLength(3);
  });

  it('a lazy client closes when idle and reopens for the next call', async () => {
    const results = await onBoth({}, async (server) => {
      let closes = 0;
      const { trpc } = client(server, { lazy: { enabled: true, closeMs: 30 }, onClose: () => closes++ });
      const first = await trpc.hello.query({ name: 'one' });
      await vi.waitFor(() => expect(closes).toBe(1));
      const second = await trpc.hello.query({ name: 'two' });
      return { first, second };
    });
    expect(results).toEqual({ first: 'hello one', second: 'hello two' });
  });

  it('createContext failure: a waiting query and subscription get UNAUTHORIZED', async () => {
    const refuse = {
      createContext: async () => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'No entry' });
      },
    };
    const codes = await onBoth(refuse, async (server) => {
      const { trpc } = client(server, { connectionParams: { token: 'x' } });
      const subError = new Promise<unknown>((resolve) => {
        trpc.countdown.subscribe({ from: 1 }, { onError: resolve });
      });
      const queryError = await trpc.hello.query({ name: 'a' }).catch((e: unknown) => e);
      return [
        (queryError as TRPCClientError<ConformanceRouter>).data?.code,
        ((await subError) as TRPCClientError<ConformanceRouter>).data?.code,
      ];
    });
    expect(codes).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED']);
  });

  it('a transformer on both ends: Dates round-trip', async () => {
    const results = await onBoth({ transformer: true }, async (server) => {
      const { trpc } = client(server, {}, { transformer: dateTransformer });
      const when = await trpc.when.query();
      const echo = await trpc.echo.mutate({ at: new Date('2021-05-06T00:00:00Z') });
      const error = await trpc.forbidden
        .query()
        .catch((e: unknown) => (e as TRPCClientError<ConformanceRouter>).data?.code);
      return {
        when: when.at instanceof Date && when.at.getTime(),
        echo: echo.at instanceof Date && echo.year,
        error,
      };
    });
    expect(results).toEqual({ when: 0, echo: 2021, error: 'FORBIDDEN' });
  });

  it('experimental_encoder: a binary encoder on both ends', async () => {
    const results = await onBoth({ experimental_encoder: bytesEncoder }, async (server) => {
      const { trpc } = client(server, { experimental_encoder: bytesEncoder });
      const seen: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        trpc.countdown.subscribe(
          { from: 2 },
          { onData: (d) => seen.push(d), onError: reject, onComplete: resolve },
        );
      });
      return { hello: await trpc.hello.query({ name: 'bin' }), seen: seen.length };
    });
    expect(results).toEqual({ hello: 'hello bin', seen: 2 });
  });
});

describe('conformance: memory', () => {
  it('a generator subscription keeps at most the current value reachable', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const alive = await onBoth({}, async (server) => {
      yielded.length = 0;
      const socket = await raw(server);
      socket.send(sub(1, 'big'));
      await vi.waitFor(
        () => expect(socket.messages.filter((m) => m.result?.type === 'data')).toHaveLength(100),
        { timeout: 20_000 },
      );
      socket.messages.length = 0;
      let count = Number.POSITIVE_INFINITY;
      await vi.waitFor(() => {
        gc();
        count = yielded.filter((ref) => ref.deref() !== undefined).length;
        expect(count).toBeLessThanOrEqual(1);
      });
      return count <= 1;
    });
    expect(alive).toBe(true);
  });
});
