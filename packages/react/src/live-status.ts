import { type ConnectionState, type PulseError, toPulseError } from '@pulse/client';

/**
 * A live hook's status: `connecting` until its first data, `live` while streaming, `reconnecting`
 * while the socket is down (data kept, resumed on reconnect), `offline` once the client is closed,
 * `error` when the server refused the subscription or the token.
 */
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'error';

/** Folds a subscription's own error and the socket's state into one status and one error. */
export function liveState(opts: {
  connection: ConnectionState;
  subscriptionError: unknown;
  hasData: boolean;
  extraError?: PulseError | null;
}): { status: LiveStatus; error: PulseError | null } {
  const { connection } = opts;
  if (opts.subscriptionError) return { status: 'error', error: toPulseError(opts.subscriptionError) };
  // NOTE: a refused token never reaches the subscription (the socket closes first): surface it here.
  if (connection.error?.context.type === 'AUTH' && connection.status !== 'connected')
    return { status: 'error', error: connection.error };
  const error = opts.extraError ?? null;
  if (connection.status === 'offline') return { status: 'offline', error };
  if (connection.status === 'reconnecting') return { status: 'reconnecting', error };
  if (connection.status === 'connecting' || !opts.hasData) return { status: 'connecting', error };
  return { status: 'live', error };
}
