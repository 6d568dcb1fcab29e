import type { PulseError } from '@pulse/client';
import type { PresenceEvent, UserPresence } from '@pulse/client';
import { useCallback, useEffect, useSyncExternalStore } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import type { PresencePatch } from './presence-reporter.js';
import { usePulseContext, useViewer } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { useConnectionState } from './useConnectionStatus.js';

/** The shared state of one workspace's presence subscription. */
interface PresenceState {
  map: Map<string, UserPresence>;
  /** Everyone, by name (computed once per event for every reader). */
  list: UserPresence[];
}

export interface UsePresenceOptions<TSelected = UserPresence[]> {
  /** Time without input (ms) before the viewer is shown `away` (default: the provider's, 60 s). */
  idleMs?: number;
  /** Announce the viewer as online in this workspace (default true); false only watches. */
  announce?: boolean;
  /** Set false to pause (no subscription, no announcing). */
  enabled?: boolean;
  /**
   * Picks what this component needs from the users list (e.g. `(users) => users.length`): it then
   * re-renders only when that value changes (compared shallowly), not on every presence event.
   */
  select?: (users: UserPresence[]) => TSelected;
}

export interface UsePresenceResult<TSelected = UserPresence[]> {
  /** Everyone online in the workspace (one entry per user, however many tabs), by name; or `select`'s value. */
  users: TSelected;
  /** The viewer's own presence, once the server confirmed it. */
  me: UserPresence | null;
  /** Changes the viewer's status, page or activity (merged with what was set before). */
  set: (patch: PresencePatch) => void;
  status: LiveStatus;
  error: PulseError | null;
}

/** Applies one presence event to the users map (snapshot replaces, diffs patch). */
export function applyPresenceEvent(
  users: ReadonlyMap<string, UserPresence>,
  event: PresenceEvent,
): Map<string, UserPresence> {
  switch (event.type) {
    case 'snapshot':
      return new Map(event.users.map((u) => [u.userId, u]));
    case 'join':
    case 'update':
      return new Map(users).set(event.user.userId, event.user);
    case 'leave': {
      const next = new Map(users);
      next.delete(event.userId);
      return next;
    }
    default:
      return assertNever(event);
  }
}

function assertNever(value: never): never {
  throw new Error(`Unexpected event: ${JSON.stringify(value)}`);
}

const byName = (a: UserPresence, b: UserPresence) => a.name.localeCompare(b.name);
const noUsers: UserPresence[] = [];

/**
 * Live presence of a workspace, and the viewer's own: announces the viewer `online`, shows them
 * `away` after `idleMs` without input or while the tab is hidden, back `online` on activity, and
 * re-announces after every reconnect. Every `usePresence` of one workspace under a provider shares
 * one server subscription and one store (120 avatars: one subscription).
 *
 * @example
 * ```tsx
 * function WhoIsHere({ workspaceId }: { workspaceId: string }) {
 *   const { users, me, set, status } = usePresence(workspaceId, { idleMs: 120_000 });
 *   return (
 *     <ul data-status={status}>
 *       {users.map((u) => <li key={u.userId}>{u.name} · {u.status}{u.userId === me?.userId && ' (you)'}</li>)}
 *       <button onClick={() => set({ activity: { kind: 'editing', target: 'post-42' } })}>Edit</button>
 *     </ul>
 *   );
 * }
 * ```
 */
export function usePresence<TSelected = UserPresence[]>(
  workspaceId: string,
  opts: UsePresenceOptions<TSelected> = {},
): UsePresenceResult<TSelected> {
  const enabled = opts.enabled ?? true;
  const announce = enabled && (opts.announce ?? true);
  const context = usePulseContext();
  const connection = useConnectionState();
  const viewer = useViewer();
  const reporter = context.presenceReporter(workspaceId);
  const reported = useSyncExternalStore(reporter.subscribe, reporter.getSnapshot, reporter.getSnapshot);

  useEffect(() => {
    if (!announce) return;
    return reporter.retain();
  }, [reporter, announce]);
  useEffect(() => {
    if (announce && opts.idleMs !== undefined) reporter.setIdleMs(opts.idleMs);
  }, [reporter, announce, opts.idleMs]);

  const input = { workspaceId };
  const entry = enabled
    ? context.subscriptions.get(subscriptionKey('presence.onChange', input), () => ({
        open: (handlers) => context.client.trpc.presence.onChange.subscribe(input, handlers).unsubscribe,
        reduce: (state: PresenceState | null, event: PresenceEvent): PresenceState => {
          const map = applyPresenceEvent(state?.map ?? new Map(), event);
          return { map, list: [...map.values()].sort(byName) };
        },
      }))
    : null;
  const { select } = opts;
  const meUserId = reported.me?.userId ?? viewer?.userId;
  const shared = useSharedSubscription(entry, (state) => ({
    users: select ? select(state?.list ?? noUsers) : ((state?.list ?? noUsers) as TSelected),
    me: meUserId ? (state?.map.get(meUserId) ?? null) : null,
  }));
  const me = shared.value.me ?? reported.me;
  const set = useCallback((patch: PresencePatch) => reporter.update(patch), [reporter]);
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: shared.hasData,
    extraError: reported.error,
  });
  return { users: shared.value.users, me: me ?? null, set, status, error };
}

/**
 * Reports the page the viewer is on (e.g. the router's pathname) as part of their presence.
 *
 * @example
 * ```tsx
 * const { pathname } = useLocation();
 * usePresencePage('acme', pathname);
 * ```
 */
export function usePresencePage(workspaceId: string, page: string): void {
  const reporter = usePulseContext().presenceReporter(workspaceId);
  // NOTE: the page is recorded before retaining, so the first announcement already carries it.
  useEffect(() => {
    reporter.update({ page });
  }, [reporter, page]);
  useEffect(() => reporter.retain(), [reporter]);
}
