/**
 * Pulse's WebSocket protocol constants, shared by server and client. Browser-safe: no Node imports,
 * no values from the server's dependencies (the packages engineer exports it as
 * `@pulse/server/protocol`).
 */

/** Close codes Pulse uses (4000–4999 are application-defined). */
export const CloseCode = {
  /** Token missing, invalid or expired: reconnect with a fresh token. */
  unauthorized: 4401,
  /** Too many connections for this user. */
  tooManyConnections: 4429,
  /** Connection params never arrived. */
  authTimeout: 4408,
  /** The socket stopped reading and its buffer passed the close mark; resume with lastEventId. */
  slowConsumer: 4008,
  /** Server going away (graceful shutdown). */
  goingAway: 1001,
  /** The server failed handling this socket (a bug, never the client's input). */
  internalError: 1011,
  /** Too many handshakes in progress (load shedding in a reconnect storm): retry after the hint. */
  tryAgainLater: 1013,
} as const;

/**
 * The least a client waits after a 1013 close before it retries (the server's retry hint); the
 * client adds full jitter over the same span, so shed clients come back spread out.
 */
export const TRY_AGAIN_LATER_RETRY_MS = 1_000;

/** A close code of `CloseCode`. */
export type PulseCloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** UTF-8 bytes a close reason may hold (RFC 6455: 125 minus the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** The fixed close reason the server sends with each of its close codes. */
export const CLOSE_REASONS: Readonly<Record<number, string>> = {
  [CloseCode.unauthorized]: 'Unauthorized',
  [CloseCode.tooManyConnections]: 'Too many connections',
  [CloseCode.authTimeout]: 'Authentication timeout',
  [CloseCode.slowConsumer]: 'Slow consumer',
  [CloseCode.goingAway]: 'Server shutting down',
  [CloseCode.internalError]: 'Internal error',
  [CloseCode.tryAgainLater]: 'Try again later',
};

/** `reason` cut to the 123 UTF-8 bytes a close frame holds, on a character boundary. */
export function closeReason(reason: string): string {
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const cp = char.codePointAt(0) as number;
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + size > MAX_CLOSE_REASON_BYTES) return reason.slice(0, end);
    bytes += size;
    end += char.length;
  }
  return reason;
}
