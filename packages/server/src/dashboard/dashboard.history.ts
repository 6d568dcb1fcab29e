import { type Generated, type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';
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

/** Raw points, buckets and the rollup watermark (SQLite and PostgreSQL). */
export type DashboardHistoryTables = {
  dashboard_points: {
    id: Generated<number | string>;
    workspace_id: string;
    value_key: string;
    kind: string;
    platform: string;
    account_id: string;
    /** Epoch ms of the measurement. */
    at_ms: number | string;
    /** Epoch ms it was stored (the rollup waits for points to settle). */
    created_ms: number | string;
    /** The update event as JSON (what live subscribers got). */
    event: string;
  };
  dashboard_buckets: {
    workspace_id: string;
    value_key: string;
    series: string;
    width: string;
    start_ms: number | string;
    kind: string;
    platform: string;
    account_id: string;
    count: number | string;
    sum: number;
    min: number;
    max: number;
    last: number;
    last_at_ms: number | string;
  };
  dashboard_rollup: {
    id: string;
    /** Every raw point with an id up to here is in the buckets. */
    rolled_id: number | string;
    updated_ms: number | string;
  };
};

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
const isPostgres = (db: Kysely<any>) => db.getExecutor().adapter instanceof PostgresAdapter;

export const dashboardHistoryMigrations: Record<string, Migration> = {
  '1200_dashboard_history': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
    async up(db: Kysely<any>) {
      const pg = isPostgres(db);
      await db.schema
        .createTable('dashboard_points')
        .ifNotExists()
        .addColumn('id', pg ? 'bigserial' : 'integer', (c) =>
          pg ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('value_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('dashboard_points_ws_kind_at')
        .ifNotExists()
        .on('dashboard_points')
        .columns(['workspace_id', 'kind', 'at_ms'])
        .execute();
      await db.schema
        .createIndex('dashboard_points_at')
        .ifNotExists()
        .on('dashboard_points')
        .column('at_ms')
        .execute();
      const real = pg ? 'double precision' : 'real';
      await db.schema
        .createTable('dashboard_buckets')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('value_key', 'text', (c) => c.notNull())
        .addColumn('series', 'text', (c) => c.notNull())
        .addColumn('width', 'text', (c) => c.notNull())
        .addColumn('start_ms', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addColumn('sum', sql.raw(real), (c) => c.notNull())
        .addColumn('min', sql.raw(real), (c) => c.notNull())
        .addColumn('max', sql.raw(real), (c) => c.notNull())
        .addColumn('last', sql.raw(real), (c) => c.notNull())
        .addColumn('last_at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('dashboard_buckets_pk', [
          'workspace_id',
          'value_key',
          'series',
          'width',
          'start_ms',
        ])
        .execute();
      await db.schema
        .createIndex('dashboard_buckets_ws_kind')
        .ifNotExists()
        .on('dashboard_buckets')
        .columns(['workspace_id', 'kind', 'width', 'start_ms'])
        .execute();
      await db.schema
        .createTable('dashboard_rollup')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('rolled_id', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into dashboard_rollup (id, rolled_id, updated_ms) values ('rollup', 0, 0)`.execute(db);
    },
  },
};

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
