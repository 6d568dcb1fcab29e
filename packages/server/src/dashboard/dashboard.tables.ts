import { type Generated, type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';
import { renameTables } from '../infra/store/rename.js';

/** Latest value per (workspace, key): every node answers the same snapshot. */
export type DashboardTables = {
  pulse_dashboard_values: {
    workspace_id: string;
    value_key: string;
    kind: string;
    platform: string;
    /** ISO time of the measurement; an older one never replaces a newer one. */
    at: string;
    /** The full update event as JSON. */
    event: string;
  };
};

/** Raw points, buckets and the rollup watermark (SQLite and PostgreSQL). */
export type DashboardHistoryTables = {
  pulse_dashboard_points: {
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
  pulse_dashboard_buckets: {
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
  pulse_dashboard_rollup: {
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

const seedMigrations: Record<string, Migration> = {
  '0200_dashboard': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dashboard_values')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('value_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('dashboard_values_pk', ['workspace_id', 'value_key'])
        .execute();
    },
  },
};

/**
 * The one table prefix (issue 13): the dashboard's tables get the `pulse_` every other table has.
 * Older migrations keep the names they created; every query uses the new ones, so all nodes must
 * run this version (docs/dashboard.md).
 */
export const dashboardPrefixMigrations: Record<string, Migration> = {
  '1700_dashboard_pulse_prefix': {
    async up(db) {
      await renameTables(
        db,
        ['dashboard_values', 'dashboard_points', 'dashboard_buckets', 'dashboard_rollup'].map((from) => ({
          from,
          to: `pulse_${from}`,
        })),
      );
    },
  },
};

/** Migrations of the dashboard: latest values (`0200`), history (`1200`), the table prefix (`1700`). */
export const dashboardMigrations: Record<string, Migration> = {
  ...seedMigrations,
  ...dashboardHistoryMigrations,
  ...dashboardPrefixMigrations,
};
