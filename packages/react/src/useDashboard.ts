import type { PulseError } from '@pulse/client';
import type { DashboardEvent, DashboardFilter, DashboardUpdateEvent } from '@pulse/client';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { useConnectionState } from './useConnectionStatus.js';

type DashboardValues = Readonly<Record<string, DashboardUpdateEvent>>;

export interface UseDashboardOptions<TSelected = DashboardValues> {
  kinds?: DashboardFilter['kinds'];
  platforms?: DashboardFilter['platforms'];
  /** Set false to pause (no subscription). */
  enabled?: boolean;
  /** Picks what this component needs from `values`: it re-renders only when that changes (shallowly). */
  select?: (values: DashboardValues) => TSelected;
}

export interface UseDashboardResult<TSelected = DashboardValues> {
  /** The latest value per key (`kind:platform:accountId:subkey`), or `select`'s value. */
  values: TSelected;
  /** The most recent update received live (null until one arrives after the snapshot). */
  lastUpdate: DashboardUpdateEvent | null;
  status: LiveStatus;
  error: PulseError | null;
}

interface DashboardState {
  values: Record<string, DashboardUpdateEvent>;
  lastUpdate: DashboardUpdateEvent | null;
}

const noValues: DashboardValues = {};

/** Applies one dashboard event: a snapshot replaces everything, an update replaces its key unless older. */
export function applyDashboardEvent(
  state: Pick<DashboardState, 'values' | 'lastUpdate'>,
  event: DashboardEvent,
): Pick<DashboardState, 'values' | 'lastUpdate'> {
  if (event.type === 'snapshot')
    return { values: Object.fromEntries(event.updates.map((u) => [u.key, u])), lastUpdate: state.lastUpdate };
  const current = state.values[event.key];
  if (current && current.at > event.at) return state;
  return { values: { ...state.values, [event.key]: event }, lastUpdate: event };
}

/**
 * Live dashboard values of a workspace, optionally filtered by kinds and platforms: the latest
 * value per key (snapshot on every (re)subscribe) and the last update. Hooks with the same
 * workspace and filter share one server subscription.
 *
 * @example
 * ```tsx
 * const { values, lastUpdate } = useDashboard('acme', { kinds: ['followers'], platforms: ['instagram'] });
 * const followers = Object.values(values).filter((v) => v.kind === 'followers');
 * return <Counter value={followers[0]?.kind === 'followers' ? followers[0].count : 0} flash={lastUpdate?.at} />;
 * ```
 */
export function useDashboard<TSelected = DashboardValues>(
  workspaceId: string,
  opts: UseDashboardOptions<TSelected> = {},
): UseDashboardResult<TSelected> {
  const { client, subscriptions } = usePulseContext();
  const connection = useConnectionState();
  const input = { workspaceId, kinds: opts.kinds, platforms: opts.platforms };
  const entry =
    (opts.enabled ?? true)
      ? subscriptions.get(subscriptionKey('dashboard.onUpdate', input), () => ({
          open: (handlers) => client.trpc.dashboard.onUpdate.subscribe(input, handlers).unsubscribe,
          reduce: (state: DashboardState | null, event: DashboardEvent) =>
            applyDashboardEvent(state ?? { values: {}, lastUpdate: null }, event),
        }))
      : null;
  const { select } = opts;
  const shared = useSharedSubscription(entry, (state) => ({
    values: select ? select(state?.values ?? noValues) : ((state?.values ?? noValues) as TSelected),
    lastUpdate: state?.lastUpdate ?? null,
  }));
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: shared.hasData,
  });
  return { values: shared.value.values, lastUpdate: shared.value.lastUpdate, status, error };
}
