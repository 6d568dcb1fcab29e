import type { ConnectionState, ConnectionStatus, PulseError, TabRole } from '@pulse/client';
import { useSyncExternalStore } from 'react';
import { usePulseContext } from './PulseProvider.js';

/**
 * The socket's state: `connecting` → `connected` → `reconnecting` (after a drop) → `connected`,
 * `offline` once closed; `error` is the last connection error (a refused token, a dropped socket).
 * `role` says whether this tab holds the socket its other tabs share (`leader`), uses another
 * tab's (`follower`: status and error are the leader's), or has its own (`solo`).
 *
 * @example
 * ```tsx
 * const { status, error } = useConnectionStatus();
 * if (error?.context.type === 'AUTH') return <SignInAgain />;
 * return <Dot color={status === 'connected' ? 'green' : 'orange'} />;
 * ```
 */
export function useConnectionStatus(): {
  status: ConnectionStatus;
  error: PulseError | null;
  attempt: number;
  role: TabRole;
} {
  const state = useConnectionState();
  return { status: state.status, error: state.error, attempt: state.attempt, role: state.role };
}

/** The full connection state (internal helper shared by the hooks). */
export function useConnectionState(): ConnectionState {
  const { client } = usePulseContext();
  return useSyncExternalStore(
    (listener) => {
      const off = client.onConnectionState(listener);
      return () => void off();
    },
    client.getConnectionState,
    client.getConnectionState,
  );
}
