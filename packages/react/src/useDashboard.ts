import type { PulseError } from '@pulse/client';
import type { DashboardEvent, DashboardFilter, DashboardUpdateEvent } from '@pulse/client';
import { useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

export interface UseDashboardOptions {
  kinds?: DashboardFilter['kinds'];
  platforms?: DashboardFilter['platforms'];
}

export interface UseDashboardResult {
  /** The latest value per key (`kind:platform:accountId:subkey`). */
  values: Readonly<Record<string, DashboardUpdateEvent>>;
  /** The most recent update received live (null until one arrives after the snapshot). */
  lastUpdate: DashboardUpdateEvent | null;
  status: LiveStatus;
  error: PulseError | null;
}

interface DashboardState {
  filterKey: string;
  values: Record<string, DashboardUpdateEvent>;
  lastUpdate: DashboardUpdateEvent | null;
}

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
 * value per key (snapshot on every (re)subscribe) and the last update.
 *
 * @example
 * ```tsx
 * const { values, lastUpdate } = useDashboard('acme', { kinds: ['followers'], platforms: ['instagram'] });
 * const followers = Object.values(values).filter((v) => v.kind === 'followers');
 * return <Counter value={followers[0]?.kind === 'followers' ? followers[0].count : 0} flash={lastUpdate?.at} />;
 * ```
 */
export function useDashboard(workspaceId: string, opts: UseDashboardOptions = {}): UseDashboardResult {
  const connection = useConnectionState();
  const input = { workspaceId, kinds: opts.kinds, platforms: opts.platforms };
  const filterKey = JSON.stringify(input);
  const [state, setState] = useState<DashboardState | null>(null);
  const subscription = trpc.dashboard.onUpdate.useSubscription(input, {
    onData: (event) =>
      setState((prev) => {
        const base = prev?.filterKey === filterKey ? prev : { values: {}, lastUpdate: null };
        return { filterKey, ...applyDashboardEvent(base, event) };
      }),
  });
  const current = state?.filterKey === filterKey ? state : null;
  const subscriptionError = useSubscriptionRecovery(subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: current !== null,
  });
  return { values: current?.values ?? {}, lastUpdate: current?.lastUpdate ?? null, status, error };
}
