import { type DashboardUpdateEvent, dashboardBucketWidthMs as widthMs } from './dashboard.schema.js';

export {
  type DashboardBucket,
  type DashboardHistory,
  type DashboardHistoryInput,
  type AnyDashboardHistoryInput,
  type DashboardPoint,
  type DashboardSeries,
  dashboardBucketSchema,
  dashboardHistoryInput,
} from './dashboard.schema.js';

/** The numeric series of one update: series name → value. */
export function seriesOf(event: DashboardUpdateEvent): Record<string, number> {
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

/**
 * The series of an app's own kind (`dashboardKinds`): every top-level finite number field, named
 * after the field (`{ kind: 'mrr', value: 12, currency: 'EUR' }` has the series `value`).
 */
function numberFields(event: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(event))
    if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
  return out;
}

/** One aggregate being built (a bucket, or a raw point). */
export interface Aggregate {
  key: string;
  series: string;
  kind: string;
  platform: string;
  accountId: string;
  startMs: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  last: number;
  lastAtMs: number;
}

/** Adds one value to an aggregate map keyed by series and bucket start. */
export function addToAggregates(
  into: Map<string, Aggregate>,
  point: { key: string; kind: string; platform: string; accountId: string; atMs: number },
  values: Record<string, number>,
  width: number,
): void {
  const startMs = Math.floor(point.atMs / width) * width;
  for (const [series, value] of Object.entries(values)) {
    const id = `${point.key}\u0000${series}\u0000${startMs}`;
    const current = into.get(id);
    if (!current) {
      into.set(id, {
        key: point.key,
        series,
        kind: point.kind,
        platform: point.platform,
        accountId: point.accountId,
        startMs,
        count: 1,
        sum: value,
        min: value,
        max: value,
        last: value,
        lastAtMs: point.atMs,
      });
      continue;
    }
    merge(current, { count: 1, sum: value, min: value, max: value, last: value, lastAtMs: point.atMs });
  }
}

/** Merges `b` into `a` (the later `last` wins; equal times: `b`, the later stored). */
export function merge(
  a: Pick<Aggregate, 'count' | 'sum' | 'min' | 'max' | 'last' | 'lastAtMs'>,
  b: Pick<Aggregate, 'count' | 'sum' | 'min' | 'max' | 'last' | 'lastAtMs'>,
): void {
  a.count += b.count;
  a.sum += b.sum;
  a.min = Math.min(a.min, b.min);
  a.max = Math.max(a.max, b.max);
  if (b.lastAtMs >= a.lastAtMs) {
    a.last = b.last;
    a.lastAtMs = b.lastAtMs;
  }
}

export { widthMs as dashboardBucketWidthMs };
