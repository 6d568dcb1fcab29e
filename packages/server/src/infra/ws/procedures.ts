/** Running one request: a query or mutation's reply, a subscription's fast path or generic loop. */
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  callTRPCProcedure,
  isTrackedEnvelope,
  TRPCError,
  type TRPCProcedureType,
} from '@trpc/server';
import { isObservable, observableToAsyncIterable } from '@trpc/server/observable';
import { LiveStream } from '../live.js';
import { type Connection, type ContextResult, Refusal } from './connection.js';
import { LiveSubscription } from './live-subscription.js';
import type { RequestId } from './transport.js';

/** One request id on a connection: a query, a mutation or a subscription until it stops. */
export class Request<TContext> {
  stopped = false;
  readonly abort = new AbortController();
  live: LiveSubscription<TContext> | null = null;
  constructor(
    readonly conn: Connection<TContext>,
    readonly id: RequestId,
    readonly jsonrpc: '2.0' | undefined,
    readonly extra: { type: TRPCProcedureType; path: string; input: unknown },
  ) {}

  stop(sendStopped: boolean): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.live?.stop();
    const conn = this.conn;
    if (conn.subs.get(this.id) === this) {
      conn.subs.delete(this.id);
      conn.transport.decrementPath(this.extra.path);
    }
    if (sendStopped)
      conn.send(conn.transport.encode({ id: this.id, jsonrpc: this.jsonrpc, result: { type: 'stopped' } }));
  }

  fail(cause: unknown): void {
    this.conn.fail(this.id, cause, this.extra, this.jsonrpc);
  }
}

export async function run<TContext>(
  conn: Connection<TContext>,
  request: Request<TContext>,
  batchIndex: number,
): Promise<void> {
  const { type, path: procPath, input } = request.extra;
  if (type !== 'subscription') {
    try {
      await call(conn, request, batchIndex);
    } finally {
      conn.inFlight -= 1;
    }
    return;
  }
  const res = await (conn.ctxPromise as Promise<ContextResult<TContext>>);
  if (res instanceof Refusal) {
    request.stop(false);
    // As the stock adapter: each request waiting for a refused context gets the refusal.
    if (res.error && !conn.closed) request.fail(res.error);
    return;
  }
  let result: unknown;
  try {
    result = await callProcedure(conn.transport.opts.router, {
      path: procPath,
      getRawInput: rawInputOf(input),
      ctx: res,
      type,
      signal: request.abort.signal,
      batchIndex,
    });
  } catch (cause) {
    request.stop(false);
    request.fail(cause);
    return;
  }
  if (request.stopped || conn.closed) {
    request.stop(false);
    return;
  }
  if (result instanceof LiveStream && conn.transport.fastPath) {
    request.live = new LiveSubscription(request, result.spec, result.hub);
    return;
  }
  const iterable = isObservable(result) ? observableToAsyncIterable(result, request.abort.signal) : result;
  if (!isAsyncIterableLike(iterable)) {
    request.stop(false);
    request.fail(
      new TRPCError({
        code: 'INTERNAL_SERVER_ERROR',
        message: `Subscription ${procPath} did not return an observable or a AsyncGenerator`,
      }),
    );
    return;
  }
  conn.send(conn.transport.encode({ id: request.id, jsonrpc: request.jsonrpc, result: { type: 'started' } }));
  void iterate(conn, request, iterable);
}

/** What a procedure is called with (tRPC's `ProcedureCallOptions`). */
interface CallOptions {
  path: string;
  getRawInput: () => Promise<unknown>;
  ctx: unknown;
  type: TRPCProcedureType;
  signal: AbortSignal;
  batchIndex: number;
}

/**
 * `callTRPCProcedure` for a procedure the router holds directly, without `router` in the options.
 * NOTE: tRPC copies the call options at every middleware level (twice: into the middleware's
 * options and into the next level's), key by key; a member subscription goes through five levels,
 * so every key left out is ten copies fewer per new subscription. Anything else (a lazy router, an
 * unknown path, a type mismatch) goes to `callTRPCProcedure`, which loads it or gives its error.
 */
function callProcedure(router: AnyTRPCRouter, opts: CallOptions): Promise<unknown> {
  const procedures = router._def.procedures as Record<string, unknown>;
  const proc = Object.hasOwn(procedures, opts.path) ? procedures[opts.path] : undefined;
  if (typeof proc === 'function' && (proc as AnyTRPCProcedure)._def?.type === opts.type)
    return (proc as (opts: CallOptions) => Promise<unknown>)(opts);
  return callTRPCProcedure({ router, ...opts });
}

/** The raw input as tRPC's `getRawInput` gives it (one settled promise, however often it is read). */
function rawInputOf(input: unknown): () => Promise<unknown> {
  const raw = Promise.resolve(input);
  return () => raw;
}

/** A query or a mutation: one reply. */
async function call<TContext>(
  conn: Connection<TContext>,
  request: Request<TContext>,
  batchIndex: number,
): Promise<void> {
  const res = await (conn.ctxPromise as Promise<ContextResult<TContext>>);
  if (res instanceof Refusal) {
    if (res.error && !conn.closed) request.fail(res.error);
    return;
  }
  const { type, path: procPath, input } = request.extra;
  let result: unknown;
  try {
    result = await callProcedure(conn.transport.opts.router, {
      path: procPath,
      getRawInput: rawInputOf(input),
      ctx: res,
      type,
      signal: request.abort.signal,
      batchIndex,
    });
  } catch (cause) {
    request.fail(cause);
    return;
  }
  if (isAsyncIterableLike(result) || isObservable(result)) {
    request.fail(
      new TRPCError({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets`,
      }),
    );
    return;
  }
  conn.send(
    conn.transport.encode({
      id: request.id,
      jsonrpc: request.jsonrpc,
      result: { type: 'data', data: result },
    }),
  );
}

/** Generic path for any other AsyncIterable (an async generator resolver), as the stock adapter does. */
async function iterate<TContext>(
  conn: Connection<TContext>,
  request: Request<TContext>,
  iterable: AsyncIterable<unknown>,
): Promise<void> {
  const iterator = iterable[Symbol.asyncIterator]();
  const signal = request.abort.signal;
  // NOTE: one abort promise per step, settled (and its listener removed) when the step ends.
  // Racing every next() against one long-lived promise keeps a reaction (and with it every
  // yielded value) per step reachable until the subscription stops.
  let next: IteratorResult<unknown> | 'abort' | null = null;
  try {
    while (!signal.aborted) {
      next = await nextOrAbort(iterator, signal);
      if (next === 'abort') break;
      if (next.done) {
        request.stop(true);
        break;
      }
      const value = next.value;
      next = null;
      const result = isTrackedEnvelope(value)
        ? { type: 'data' as const, data: { id: value[0], data: value[1] }, id: value[0] }
        : { type: 'data' as const, data: value };
      if (!conn.send(conn.transport.encode({ id: request.id, jsonrpc: request.jsonrpc, result }))) break;
      // Back-pressure: pull the next value only once the socket has drained under the drop mark.
      const drained = conn.drained();
      if (drained) await drained;
    }
  } catch (cause) {
    // As the stock adapter: the error, then `stopped` (the socket stays open).
    if (!request.stopped) {
      request.fail(cause);
      request.stop(true);
    }
  } finally {
    next = null;
    void Promise.resolve()
      .then(() => iterator.return?.())
      .catch(() => {});
  }
}

/** One `iterator.next()` raced against `signal`; the abort listener lives only as long as the step. */
function nextOrAbort(
  iterator: AsyncIterator<unknown>,
  signal: AbortSignal,
): Promise<IteratorResult<unknown> | 'abort'> {
  if (signal.aborted) return Promise.resolve('abort');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('abort');
    signal.addEventListener('abort', onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (cause) => {
        signal.removeEventListener('abort', onAbort);
        reject(cause);
      },
    );
  });
}

function isAsyncIterableLike(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && Symbol.asyncIterator in value;
}
