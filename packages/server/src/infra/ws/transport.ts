/** State every socket of one transport shares: options, counters, frame groups, encoding, keep-alive. */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AnyTRPCRouter,
  getErrorShape,
  getTRPCErrorFromUnknown,
  TRPCError,
  type TRPCProcedureType,
  transformTRPCResponse,
} from '@trpc/server';
import type { Encoder } from '@trpc/server/adapters/ws';
import type { TRPCResponseMessage } from '@trpc/server/rpc';
import type { HubEvent } from '../hub.js';
import type { Connection } from './connection.js';
import { PrefixGroup } from './frames.js';
import type { WriteGathering, WsHandlerOptions, WsLimits } from './options.js';
import { CloseCode } from './protocol.js';

/** `WebSocket.OPEN`. */
export const OPEN = 1;

export type RequestId = string | number;

export type ErrorExtra = { type?: TRPCProcedureType | 'unknown'; path?: string; input?: unknown };

/**
 * Transport-wide state. Connections and subscriptions are class instances whose methods live on
 * the prototype: an idle subscribed socket costs a few small objects, not dozens of closures.
 */
export class Transport<TContext> {
  readonly limits: WsLimits;
  readonly config: AnyTRPCRouter['_def']['_config'];
  readonly connections = new Set<Connection<TContext>>();
  readonly userConnections = new Map<string, number>();
  readonly subscriptionsByPath = new Map<string, number>();
  /** Sockets not yet authenticated, per remote address. */
  readonly unauthenticatedByIp = new Map<string, number>();
  /** LiveStreams go to the hub directly (JSON encoder and a transformer that leaves data as is). */
  readonly fastPath: boolean;
  shuttingDown = false;
  private readonly encoder: Encoder | null;
  private readonly plainJson: boolean;
  // Deliveries are reported once per event (after the synchronous fan-out loop), not once per
  // socket: a metrics hook must not run 10,000 times per broadcast.
  /** Subscriptions by id prefix: frames are shared between subscriptions with the same id. */
  private readonly prefixGroups = new Map<string, PrefixGroup>();
  /** How fast-path writes are gathered (see `WsHandlerOptions.writeGathering`). */
  readonly gathering: WriteGathering;
  /** TCP sockets corked in this turn, uncorked together by `flushCorked`. */
  private corked: Duplex[] = [];
  private flushScheduled = false;
  private readonly flushCorked = () => {
    this.flushScheduled = false;
    const corked = this.corked;
    this.corked = [];
    // NOTE: one uncork per socket hands its gathered frames to one `writev` (several events, or
    // header + tail, in one syscall). A destroyed socket ignores it.
    for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  };
  private deliveredEvent: HubEvent | null = null;
  private deliveredCount = 0;
  private readonly flushDelivered = () => {
    const event = this.deliveredEvent;
    const count = this.deliveredCount;
    this.deliveredEvent = null;
    this.deliveredCount = 0;
    try {
      if (event && count > 0) this.opts.onDelivered?.(count, event);
    } catch {
      // NOTE: a failing metrics hook must not escape the microtask.
    }
  };

  constructor(readonly opts: WsHandlerOptions<TContext>) {
    this.limits = opts.limits;
    this.config = opts.router._def._config;
    this.encoder = opts.experimental_encoder ?? null;
    const probe = {};
    this.plainJson = this.encoder === null && this.config.transformer.output.serialize(probe) === probe;
    this.fastPath = this.plainJson && opts.fastPath !== false;
    this.gathering = opts.writeGathering ?? gatheringFromEnv();
  }

  /**
   * Corks `raw` until the end of this turn (once per turn and socket: `writableCorked` tells),
   * so every frame written to it meanwhile goes out in one syscall. Buffered bytes still count in
   * `writableLength`, so the slow-consumer checks see them.
   */
  gather(raw: Duplex): void {
    if (raw.writableCorked !== 0) return;
    raw.cork();
    this.corked.push(raw);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (this.gathering === 'microtask') queueMicrotask(this.flushCorked);
    else setImmediate(this.flushCorked);
  }

  /** A response message on the wire: the router's transformer applied, then the encoder (JSON by default). */
  encode(message: TRPCResponseMessage | { id: null; method: 'reconnect' }): string | Buffer {
    if (this.plainJson) return JSON.stringify(message);
    const transformed = 'method' in message ? message : transformTRPCResponse(this.config, message);
    if (!this.encoder) return JSON.stringify(transformed);
    const encoded = this.encoder.encode(transformed);
    return typeof encoded === 'string'
      ? encoded
      : Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  }

  /** An incoming frame decoded (JSON unless an encoder is set). */
  decode(data: Buffer, isBinary: boolean): unknown {
    if (!this.encoder) {
      // NOTE: the stock adapter's text for a binary frame without a binary encoder.
      if (isBinary)
        throw new Error(
          'jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data.',
        );
      return JSON.parse(data.toString('utf8'));
    }
    return this.encoder.decode(
      isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString('utf8'),
    );
  }

  acquirePrefix(prefix: string): PrefixGroup {
    let group = this.prefixGroups.get(prefix);
    if (!group) {
      group = new PrefixGroup(prefix);
      this.prefixGroups.set(prefix, group);
    }
    group.count += 1;
    return group;
  }

  releasePrefix(group: PrefixGroup): void {
    group.count -= 1;
    if (group.count <= 0 && this.prefixGroups.get(group.prefix) === group)
      this.prefixGroups.delete(group.prefix);
  }

  countDelivery(event: HubEvent): void {
    if (!this.opts.onDelivered) return;
    if (event !== this.deliveredEvent) {
      if (this.deliveredEvent) this.flushDelivered();
      else queueMicrotask(this.flushDelivered);
      this.deliveredEvent = event;
    }
    this.deliveredCount += 1;
  }

  errorMessage(
    id: RequestId | null,
    cause: unknown,
    extra: ErrorExtra,
    ctx: TContext | null,
    jsonrpc?: '2.0',
  ): string | Buffer {
    const error = getTRPCErrorFromUnknown(cause);
    return this.encode({
      id,
      jsonrpc,
      error: getErrorShape({
        config: this.config,
        error,
        type: extra.type ?? 'unknown',
        path: extra.path,
        input: extra.input,
        ctx: ctx ?? undefined,
      }),
    });
  }

  incrementPath(procPath: string): void {
    this.subscriptionsByPath.set(procPath, (this.subscriptionsByPath.get(procPath) ?? 0) + 1);
  }

  decrementPath(procPath: string): void {
    const n = (this.subscriptionsByPath.get(procPath) ?? 1) - 1;
    if (n <= 0) this.subscriptionsByPath.delete(procPath);
    else this.subscriptionsByPath.set(procPath, n);
  }

  /** One pass over every socket: send PING after `pingMs` of silence, terminate after `pongWaitMs`. */
  keepAlive(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      try {
        if (conn.pingSentAt) {
          if (now - conn.pingSentAt >= this.limits.pongWaitMs) conn.socket.terminate();
        } else if (now - conn.lastSeen >= this.limits.pingMs) {
          conn.pingSentAt = now;
          if (conn.socket.readyState === OPEN) conn.socket.send('PING');
        }
      } catch {
        // NOTE: one broken socket must not stop the pass (nor escape the interval).
        conn.closeWith(CloseCode.internalError, 'Internal error');
      }
    }
  }
}

/** Runs `fn`; an exception closes that one socket (1011) instead of escaping into the event loop. */
export function guard<TContext>(conn: Connection<TContext>, fn: () => void): void {
  try {
    fn();
  } catch (cause) {
    try {
      conn.transport.opts.onError?.(
        new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'WebSocket handler failed', cause }),
        { connectionId: conn.id },
      );
    } catch {
      // a failing log hook must not escape either
    }
    conn.closeWith(CloseCode.internalError, 'Internal error');
  }
}

/**
 * The peer's address. NOTE: read from the handle, not `socket.remoteAddress`, which caches an
 * object on the socket (and grows its property store): ≈0.35 KB kept with every connection.
 */
export function peerAddress(socket: Socket): string {
  const handle = (socket as unknown as { _handle?: { getpeername?(out: { address?: string }): number } })
    ._handle;
  if (handle?.getpeername) {
    const out: { address?: string } = {};
    if (handle.getpeername(out) === 0 && out.address) return out.address;
  }
  return socket.remoteAddress ?? 'unknown';
}

function gatheringFromEnv(): WriteGathering {
  const mode = process.env.PULSE_WS_WRITE_GATHER;
  return mode === 'immediate' || mode === 'microtask' ? mode : 'off';
}
