import { type PulseError, toPulseError } from '@pulse/client';
import type { NotificationPreferences, NotificationPreferencesSetInput } from '@pulse/client';
import { useCallback, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';
import { useNotificationFeed } from './useNotifications.js';

/** A change of preferences: `preferences.set`'s input without the workspace. */
export type NotificationPreferencesChange = Omit<NotificationPreferencesSetInput, 'workspaceId'>;

export interface UseNotificationPreferencesOptions {
  /** Set false to pause (no subscription, no query). */
  enabled?: boolean;
}

/**
 * What `useNotificationPreferences` returns. `TPreferences` / `TChange` are `preferences.get`'s
 * output and `set`'s input without the workspace: Pulse's eight kinds here, the app router's with
 * `createPulseHooks<AppRouter>()`.
 */
export interface UseNotificationPreferencesResult<
  TPreferences = NotificationPreferences,
  TChange = NotificationPreferencesChange,
> {
  /** The viewer's choices, the workspace defaults and what reaches the viewer per kind (null until loaded). */
  preferences: TPreferences | null;
  /** Changes the viewer's choices (or, `scope: 'workspace'`, an admin's workspace defaults); resolves with the new settings. */
  set: (change: TChange) => Promise<TPreferences>;
  /** A `set` is under way. */
  saving: boolean;
  status: LiveStatus;
  /** The last failed `set` (e.g. FORBIDDEN when muting crisis alerts is not allowed), or a loading error. */
  error: PulseError | null;
}

/**
 * The viewer's notification preferences in a workspace, live: a change made in another tab or
 * device (or new workspace defaults by an admin) arrives as a `preferences` event on the shared
 * `notifications.onFeed` subscription (the same one `useNotifications` reads; newest revision wins).
 * Typed with Pulse's eight kinds; `createPulseHooks<AppRouter>()` returns it typed with the app's.
 *
 * @example
 * ```tsx
 * const { preferences, set } = useNotificationPreferences('acme');
 * return <Toggle checked={preferences?.effective.review ?? true} onChange={(on) => set({ kinds: { review: on } })} />;
 * ```
 */
export function useNotificationPreferences(
  workspaceId: string,
  opts: UseNotificationPreferencesOptions = {},
): UseNotificationPreferencesResult {
  const enabled = opts.enabled ?? true;
  const utils = trpc.useUtils();
  const connection = useConnectionState();
  const shared = useNotificationFeed(workspaceId, enabled);
  // NOTE: read once the feed is live, so a change made in between arrives as an event.
  const query = trpc.notifications.preferences.get.useQuery(
    { workspaceId },
    { enabled: enabled && shared.started },
  );
  const mutation = trpc.notifications.preferences.set.useMutation();
  const [actionError, setActionError] = useState<PulseError | null>(null);
  const { mutateAsync } = mutation;
  const set = useCallback(
    async (change: NotificationPreferencesChange) => {
      try {
        const result = await mutateAsync({ ...change, workspaceId });
        setActionError(null);
        utils.notifications.preferences.get.setData({ workspaceId }, result);
        return result;
      } catch (error) {
        const pulseError = toPulseError(error);
        setActionError(pulseError);
        throw pulseError;
      }
    },
    [mutateAsync, utils, workspaceId],
  );
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? query.error,
    hasData: query.data !== undefined,
    extraError: actionError,
  });
  return { preferences: query.data ?? null, set, saving: mutation.isPending, status, error };
}
