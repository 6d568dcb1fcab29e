import type { PulseError } from '@pulse/client';
import type {
  DashboardBucket,
  DashboardEvent,
  DashboardFilter,
  DashboardKind,
  DashboardPlatform,
  DashboardPoint,
  DashboardSeries,
  DashboardUpdateEvent,
} from '@pulse/client';
import { useMemo, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

type DashboardValues<TUpdate = DashboardUpdateEvent> = Readonly<Record<string, TUpdate>>;

/**
 * Options of `useDashboard`. `TUpdate` / `TKind` are the router's update and kind types (Pulse's
 * own unless the hook comes from `createPulseHooks<AppRouter>()`).
 */
export interface UseDashboardOptions<
  TSelected = DashboardValues,
  TUpdate = DashboardUpdateEvent,
  TKind = NonNullable<DashboardFilter['kinds']>[number],
> {
  kinds?: TKind[];
  platforms?: DashboardFilter['platforms'];
  /** Set false to pause (no subscription). */
  enabled?: boolean;
  /** Picks what this component needs from `values`: it re-renders only when that changes (shallowly). */
  select?: (values: DashboardValues<TUpdate>) => TSelected;
}

export interface UseDashboardResult<TSelected = DashboardValues, TUpdate = DashboardUpdateEvent> {
  /** The latest value per key (`kind:platform:accountId:subkey`), or `select`'s value. */
  values: TSelected;
  /** The most recent update received live (null until one arrives after the snapshot). */
  lastUpdate: TUpdate | null;
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

/** Options of `useDashboardHistory`; `TKind` is the router's kinds (see `createPulseHooks`). */
export interface UseDashboardHistoryOptions<TKind = DashboardKind> {
  kind: TKind;
  platform?: DashboardPlatform;
  accountId?: string;
  /** One series name (`impressions`, `count`, `likes`…); default: every series of the kind. */
  metric?: string;
  /** How far back the window starts, from when the hook mounts (default 24 h). */
  windowMs?: number;
  /** `raw` points, or `1m` / `1h` buckets (default `1m`). */
  bucket?: DashboardBucket;
  /** Set false to pause (no query, no subscription). */
  enabled?: boolean;
}

export interface UseDashboardHistoryResult {
  /** Every series in the window, oldest point first: history, then live values merged in. */
  series: DashboardSeries[];
  /** The seam between the history read and the live stream (null until history loaded). */
  until: string | null;
  status: LiveStatus;
  error: PulseError | null;
}

/** The numeric series of one update: series name → value (as the server names them). */
export function dashboardSeriesOf(event: DashboardUpdateEvent): Record<string, number> {
  switch (event.kind) {
    case 'metric':
      return { [event.metric]: event.value };
    case 'followers':
      return { count: event.count };
    case 'engagement': {
      const out: Record<string, number> = {
        likes: event.likes,
        comments: event.comments,
        shares: event.shares,
      };
      if (event.saves !== undefined) out.saves = event.saves;
      if (event.rate !== undefined) out.rate = event.rate;
      return out;
    }
    case 'analytics':
      return { ...event.values };
    case 'post':
      return { ...(event.metrics ?? {}) };
    default:
      return numberFields(event);
  }
}

/** An app's own kind (`dashboardKinds`): every top-level finite number field, named after the field. */
function numberFields(event: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(event))
    if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
  return out;
}

/** Live values received after the seam: per series id (`key\u0000series`), measurement ms → value. */
interface LivePoints {
  meta: Record<string, Omit<DashboardSeries, 'points'>>;
  points: Record<string, Record<number, number>>;
}

/**
 * Folds a live update into the live points: identified by (key, series, at), so the point at the
 * seam repeated by `onUpdate({ since })`, or one sent twice, replaces itself.
 */
export function applyLivePoint(
  state: LivePoints,
  event: DashboardUpdateEvent,
  filter: { accountId?: string; metric?: string },
): LivePoints {
  if (filter.accountId !== undefined && event.accountId !== filter.accountId) return state;
  const at = Date.parse(event.at);
  let next = state;
  for (const [name, value] of Object.entries(dashboardSeriesOf(event))) {
    if (filter.metric !== undefined && name !== filter.metric) continue;
    const id = `${event.key}\u0000${name}`;
    if (next.points[id]?.[at] === value) continue;
    next = {
      meta: next.meta[id]
        ? next.meta
        : {
            ...next.meta,
            [id]: {
              key: event.key,
              series: name,
              kind: event.kind,
              // NOTE: an app's own kind may have no platform / account: '' as the server's history has it.
              platform: (event as { platform?: string }).platform ?? '',
              accountId: (event as { accountId?: string }).accountId ?? '',
            },
          },
      points: { ...next.points, [id]: { ...next.points[id], [at]: value } },
    };
  }
  return next;
}

/**
 * History plus live points, per series, oldest first. Raw: live points replace history points with
 * the same time. Buckets: live points measured after `until` are added into their bucket (value =
 * the last one, min, max, count, sum); those at or before `until` are already in the history read.
 */
export function mergeDashboardSeries(
  history: DashboardSeries[],
  live: LivePoints,
  bucket: DashboardBucket,
  until: string,
): DashboardSeries[] {
  const width = bucket === '1m' ? 60_000 : bucket === '1h' ? 3_600_000 : 0;
  const untilMs = Date.parse(until);
  const byId = new Map<string, DashboardSeries>();
  for (const s of history) byId.set(`${s.key}\u0000${s.series}`, s);
  for (const id of Object.keys(live.points))
    if (!byId.has(id)) byId.set(id, { ...live.meta[id]!, points: [] });
  const out: DashboardSeries[] = [];
  for (const [id, s] of byId) {
    const livePoints = live.points[id];
    if (!livePoints) {
      out.push(s);
      continue;
    }
    const points = new Map<number, DashboardPoint>();
    for (const p of s.points) points.set(Date.parse(p.at), p);
    const sorted = Object.entries(livePoints)
      .map(([at, value]) => [Number(at), value] as const)
      .sort((a, b) => a[0] - b[0]);
    for (const [at, value] of sorted) {
      if (width === 0) {
        points.set(at, {
          at: new Date(at).toISOString(),
          value,
          min: value,
          max: value,
          count: 1,
          sum: value,
        });
        continue;
      }
      // NOTE: the bucket read already counted every value up to `until`; adding those again would
      // count the seam twice (a value stored in the same millisecond after the read is the one
      // case this cannot tell apart, and it is off by one count only).
      if (at <= untilMs) continue;
      const start = Math.floor(at / width) * width;
      const b = points.get(start);
      points.set(
        start,
        b
          ? {
              at: b.at,
              value,
              min: Math.min(b.min, value),
              max: Math.max(b.max, value),
              count: b.count + 1,
              sum: b.sum + value,
            }
          : { at: new Date(start).toISOString(), value, min: value, max: value, count: 1, sum: value },
      );
    }
    out.push({ ...s, points: [...points.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p) });
  }
  return out;
}

const noLive: LivePoints = { meta: {}, points: {} };

/**
 * A chart's window of history, then live: reads `dashboard.history` for the last `windowMs` (24 h by
 * default) once, then subscribes to `dashboard.onUpdate({ since: until })` and merges every update
 * into its series by (key, at), so history and live meet without a gap or a duplicate.
 *
 * @example
 * ```tsx
 * const { series } = useDashboardHistory('acme', { kind: 'followers', platform: 'instagram', bucket: '1m' });
 * return <Sparkline points={series[0]?.points.map((p) => p.value) ?? []} />;
 * ```
 */
export function useDashboardHistory(
  workspaceId: string,
  opts: UseDashboardHistoryOptions,
): UseDashboardHistoryResult {
  const { client, subscriptions } = usePulseContext();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const bucket = opts.bucket ?? '1m';
  const windowMs = opts.windowMs ?? 24 * 3_600_000;
  // NOTE: the window starts once, at mount: a `from` recomputed per render would be a new query key.
  const [from] = useState(() => new Date(Date.now() - windowMs).toISOString());
  const historyInput = {
    workspaceId,
    kind: opts.kind,
    bucket,
    from,
    ...(opts.platform ? { platform: opts.platform } : {}),
    ...(opts.accountId ? { accountId: opts.accountId } : {}),
    ...(opts.metric ? { metric: opts.metric } : {}),
  };
  const history = trpc.dashboard.history.useQuery(historyInput, {
    enabled,
    staleTime: Number.POSITIVE_INFINITY,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
    // NOTE: a refusal (FORBIDDEN, BAD_REQUEST) is final: retried only when the server or network failed.
    retry: (failures, error) => failures < 3 && !((error.data?.httpStatus ?? 500) < 500),
  });
  const until = history.data?.until ?? null;
  const filter = { accountId: opts.accountId, metric: opts.metric };
  const subscribeInput = {
    workspaceId,
    kinds: [opts.kind],
    ...(opts.platform ? { platforms: [opts.platform] } : {}),
    since: until ?? undefined,
  };
  const entry =
    enabled && until !== null
      ? subscriptions.get(subscriptionKey('dashboard.onUpdate', { ...subscribeInput, ...filter }), () => ({
          // NOTE: a restart after a dropped socket subscribes again with the same `since`: the
          // catch-up repeats points already merged, which replace themselves.
          open: (handlers) => client.trpc.dashboard.onUpdate.subscribe(subscribeInput, handlers).unsubscribe,
          reduce: (state: LivePoints | null, event: DashboardEvent) =>
            event.type === 'snapshot' ? (state ?? noLive) : applyLivePoint(state ?? noLive, event, filter),
        }))
      : null;
  const shared = useSharedSubscription(entry, (state) => state ?? noLive);
  const live = shared.value;
  const historySeries = history.data?.series;
  const series = useMemo(
    () => (historySeries && until !== null ? mergeDashboardSeries(historySeries, live, bucket, until) : []),
    [historySeries, live, bucket, until],
  );
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? history.error,
    hasData: history.data !== undefined && shared.hasData,
  });
  return { series, until, status, error };
}
