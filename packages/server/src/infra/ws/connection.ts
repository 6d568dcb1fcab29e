/** One socket: its writes and back-pressure, authentication and teardown (its admission counts and token expiry: admission.ts). */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { getTRPCErrorFromUnknown, TRPCError } from '@trpc/server';
import type { WebSocket } from 'ws';
import {
  admitUser,
  armExpiry,
  countUnauthenticated,
  releaseUser,
  uncountUnauthenticated,
} from './admission.js';
import { CLOSE_REASONS, CloseCode, closeReason } from './protocol.js';
import type { Request } from './procedures.js';
import { receive } from './requests.js';
import { type ErrorExtra, guard, OPEN, type RequestId, type Transport } from './transport.js';

/** What `createContext` settled to: requests waiting for it are answered with its error. */
export type ContextResult<TContext> = TContext | Refusal;

/**
 * A refused context (`error` null: the socket closed while it was created). NOTE: an accepted
 * context is the context itself, not a wrapper object kept alive with every socket.
 */
export class Refusal {
  constructor(readonly error: TRPCError | null) {}
}

const CLOSED = new Refusal(null);

export class Connection<TContext> {
  readonly subs = new Map<RequestId, Request<TContext>>();
  /** The TCP socket under the WebSocket (fan-out frames are written to it directly). */
  readonly raw: Duplex;
  ctx: TContext | null = null;
  ctxPromise: Promise<ContextResult<TContext>> | null = null;
  lastSeen = Date.now();
  pingSentAt = 0;
  userId: string | null = null;
  /** When the token's rights end (its expiry timer may fire a step before and re-arm; see `armExpiry`). */
  expiresAt: number | null = null;
  expiryTimer: NodeJS.Timeout | undefined;
  authTimer: NodeJS.Timeout | undefined;
  closed = false;
  /** Queries and mutations awaiting their reply. */
  inFlight = 0;
  // NOTE: aborted when the socket closes; created only when `createContext` reads `signal` (Pulse's own does not): one fewer object
  // pair per idle socket.
  private abort: AbortController | null = null;
  /** Reading is paused while the send buffer is over the drop mark (see `checkPressure`). */
  private readPaused = false;
  private drainWaiters: Array<() => void> | null = null;
  /** The remote address while the socket counts against the per-IP unauthenticated cap. */
  unauthenticatedIp: string | null = null;
  /** Called once when the handshake ends (context settled or socket closed); see `maxPendingHandshakes`. */
  handshakeDone: (() => void) | null = null;
  /** The upgrade request, kept only until `createContext` has seen it. */
  private req: IncomingMessage | null;

  constructor(
    readonly transport: Transport<TContext>,
    readonly id: string,
    readonly socket: WebSocket,
    req: IncomingMessage,
  ) {
    this.req = req;
    this.raw = (socket as unknown as { _socket: Duplex })._socket;
    transport.opts.onOpen?.(id, req);
  }

  /**
   * Every write except the fan-out fast path goes through here: over the close mark the socket is
   * closed with 4008 instead of buffering more, over the drop mark reading stops until it drains.
   */
  send(data: string | Buffer): boolean {
    const socket = this.socket;
    if (socket.readyState !== OPEN) return false;
    if (this.raw.writableLength > this.transport.limits.slowCloseBytes) {
      this.transport.opts.onDropped?.('slow');
      this.closeWith(CloseCode.slowConsumer, 'Slow consumer');
      return false;
    }
    socket.send(data);
    this.checkPressure();
    return true;
  }

  /** Stops reading the socket while its send buffer is over the drop mark (no new work is taken). */
  checkPressure(): void {
    if (this.readPaused || this.raw.writableLength <= this.transport.limits.slowDropBytes) return;
    // NOTE: only when a 'drain' is due (a drop mark below the socket's high-water mark never gets one).
    if (!this.raw.writableNeedDrain) return;
    this.readPaused = true;
    this.socket.pause();
    // NOTE: the listener is made only when needed: a function-valued class field would cost every
    // socket a closure with its own property store (≈0.3 KB).
    this.raw.once('drain', () => this.onDrain());
  }

  private onDrain(): void {
    this.readPaused = false;
    if (!this.closed) this.socket.resume();
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters) for (const wake of waiters) wake();
  }

  /** Aborted when the socket closes (the context's `signal`). */
  signal(): AbortSignal {
    this.abort ??= new AbortController();
    if (this.closed) this.abort.abort();
    return this.abort.signal;
  }

  /** Resolves when the send buffer is back under the drop mark (at once if it is) or the socket closed. */
  drained(): Promise<void> | null {
    if (!this.readPaused || this.closed) return null;
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push(resolve);
    });
  }

  fail(id: RequestId | null, cause: unknown, extra: ErrorExtra = {}, jsonrpc?: '2.0'): void {
    const error = getTRPCErrorFromUnknown(cause);
    this.transport.opts.onError?.(error, {
      connectionId: this.id,
      path: extra.path,
      type: extra.type ?? 'unknown',
      input: extra.input,
      ctx: this.ctx,
    });
    this.send(this.transport.errorMessage(id, error, extra, this.ctx, jsonrpc));
  }

  /** Closes with `code` (the reason cut to what a close frame holds); never throws. */
  closeWith(code: number | undefined, reason = ''): void {
    const socket = this.socket;
    try {
      if (socket.readyState !== OPEN) socket.terminate();
      else if (code === undefined) socket.close();
      else socket.close(code, closeReason(reason));
    } catch {
      socket.terminate();
    }
  }

  /**
   * Closes with `code` without waiting for the peer's close frame (ws would wait 30 s): the close
   * frame is flushed, the TCP side ended, and the socket destroyed shortly after.
   */
  closeNow(code: number, reason: string): void {
    this.closeWith(code, reason);
    try {
      this.raw.end();
    } catch {
      // already gone
    }
    const timer = setTimeout(() => guard(this, () => this.socket.terminate()), 1_000);
    timer.unref();
  }

  /**
   * Waits for connection params when the client announced them, else authenticates at once. `ip` is
   * the peer's address (read once, at the upgrade).
   */
  open(url: URL, ip: string): void {
    const req = this.req as IncomingMessage;
    countUnauthenticated(this, ip);
    // NOTE: the query wsLink sends is read without building `url.searchParams` (an object per socket).
    if (url.search !== '?connectionParams=1' && url.searchParams.get('connectionParams') !== '1') {
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      this.startContext(bearer ? { token: bearer } : null);
      return;
    }
    // NOTE: a shared callback with the connection as argument: no closure per new socket.
    this.authTimer = setTimeout(authTimerFired, this.transport.limits.authTimeoutMs, this);
    this.authTimer.unref();
  }

  /** No connection params within `authTimeoutMs`. */
  authTimedOut(): void {
    this.authTimer = undefined;
    if (this.ctxPromise || this.closed) return;
    guard(this, () => {
      this.fail(
        null,
        new TRPCError({ code: 'UNAUTHORIZED', message: 'No connection params received in time' }),
      );
      // NOTE: terminate, not close(): a silent client would hold the socket 30 s more for the handshake.
      this.closeNow(CloseCode.authTimeout, 'Authentication timeout');
    });
  }

  startContext(params: Record<string, string> | null): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    const req = this.req as IncomingMessage;
    this.req = null;
    this.ctxPromise = this.createContext(req, params);
    if (this.handshakeDone) void this.ctxPromise.then(() => this.endHandshake());
  }

  private endHandshake(): void {
    const done = this.handshakeDone;
    this.handshakeDone = null;
    done?.();
  }

  /** Refuses the connection: every waiting request gets `error` (see `run`), then the socket closes. */
  refuse(error: TRPCError, code: number | undefined, reason: string): ContextResult<TContext> {
    this.fail(null, error);
    // NOTE: the stock adapter closes on the next tick. Pulse's own refusals are often instant, and a
    // client's first requests (sent right after its connectionParams) would then meet a closed
    // socket and fail with no code: the socket lingers briefly so they too get the refusal.
    const timer = setTimeout(() => this.closeWith(code, reason), REFUSAL_LINGER_MS);
    timer.unref();
    return new Refusal(error);
  }

  private async createContext(
    req: IncomingMessage,
    params: Record<string, string> | null,
  ): Promise<ContextResult<TContext>> {
    const { opts } = this.transport;
    const conn = this;
    try {
      const ctx = (await opts.createContext?.({
        connectionId: this.id,
        req,
        connectionParams: params,
        socket: this.socket,
        get signal() {
          return conn.signal();
        },
      })) as TContext;
      // NOTE: the socket may have closed while the token was checked: count nothing for it.
      if (this.closed) return CLOSED;
      const who = opts.identify?.(ctx) ?? null;
      if (who) {
        if (!(await admitUser(this, who.userId))) return CLOSED;
        armExpiry(this, who.expiresAt);
      }
      uncountUnauthenticated(this);
      this.ctx = ctx;
      return ctx;
    } catch (cause) {
      if (this.closed) return CLOSED;
      const error = getTRPCErrorFromUnknown(cause);
      // NOTE: fixed close reasons: the error text (which may quote token claims) goes in the error
      // frame, never in the close frame, which holds 123 bytes at most.
      const code = opts.closeCodeFor ? opts.closeCodeFor(error) : pulseCloseCodeFor(error);
      return this.refuse(error, code, code === undefined ? '' : (CLOSE_REASONS[code] ?? ''));
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    receive(this, data, isBinary);
  }

  onClose(): void {
    const transport = this.transport;
    this.closed = true;
    this.req = null;
    this.endHandshake();
    transport.connections.delete(this);
    clearTimeout(this.authTimer);
    clearTimeout(this.expiryTimer);
    uncountUnauthenticated(this);
    this.abort?.abort();
    this.onDrain();
    for (const sub of [...this.subs.values()]) sub.stop(false);
    this.subs.clear();
    releaseUser(this);
    // NOTE: after an in-flight createContext settles, so whatever it registered is released too.
    void (this.ctxPromise ?? Promise.resolve(null)).then(() => transport.opts.onClose?.(this.id, this.ctx));
  }
}

function authTimerFired(conn: Connection<unknown>): void {
  conn.authTimedOut();
}

/** Pulse's close code for a refused context: 4429 for the per-user cap, else 4401 (refresh the token). */
function pulseCloseCodeFor(error: TRPCError): number {
  return error.code === 'TOO_MANY_REQUESTS' ? CloseCode.tooManyConnections : CloseCode.unauthorized;
}

/** How long a refused socket stays open to answer requests already on their way (see `refuse`). */
const REFUSAL_LINGER_MS = 50;
