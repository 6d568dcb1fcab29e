import { type ConnectionState, type PulseError, toPulseError } from '@pulse/client';
import { useEffect, useRef } from 'react';

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
  // NOTE: a refused token closes the socket before any subscription is answered: that is the error
  // to show, not the "connection closed" the subscription saw as a consequence.
  if (connection.error?.context.type === 'AUTH' && connection.status !== 'connected')
    return { status: 'error', error: connection.error };
  if (opts.subscriptionError) {
    const error = toPulseError(opts.subscriptionError);
    if (error.context.type !== 'CONNECTION') return { status: 'error', error };
  }
  const error = opts.extraError ?? null;
  if (connection.status === 'offline') return { status: 'offline', error };
  if (connection.status === 'reconnecting') return { status: 'reconnecting', error };
  if (connection.status === 'connecting' || !opts.hasData) return { status: 'connecting', error };
  return { status: 'live', error };
}

/**
 * A subscription that died because its socket went away (tRPC ends it with an error when it is
 * sent on a closing socket) is started again once the socket is connected; returns the error to
 * report (null for such transport errors, which the connection status already shows).
 */
export function useSubscriptionRecovery(
  subscription: { status: string; error: unknown; reset: () => void },
  connection: ConnectionState,
  /** Called when restarting (a new subscription has no resume point: refetch what it feeds). */
  onRestart?: () => void,
): unknown {
  const failed = subscription.status === 'error' ? subscription.error : null;
  const transportFailure = failed !== null && toPulseError(failed).context.type === 'CONNECTION';
  const { reset } = subscription;
  const restart = useRef({ reset, onRestart });
  restart.current = { reset, onRestart };
  useEffect(() => {
    if (!transportFailure || connection.status !== 'connected') return;
    restart.current.reset();
    restart.current.onRestart?.();
  }, [transportFailure, connection.status]);
  return transportFailure ? null : failed;
}
