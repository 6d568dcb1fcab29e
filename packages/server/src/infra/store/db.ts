import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  Kysely,
  type Migration,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Transaction,
} from 'kysely';
import pg from 'pg';

export type StoreDialect = 'sqlite' | 'postgres';

/**
 * The durable store: Kysely over better-sqlite3 (default, a file in the data dir) or PostgreSQL.
 * Domains see it through `db.withTables<TheirTables>()`; infra knows no domain table.
 */
export interface Store {
  readonly dialect: StoreDialect;
  // biome-ignore lint/complexity/noBannedTypes: domains add their tables with withTables<T>()
  readonly db: Kysely<{}>;
  /** Runs every pending migration (idempotent; safe when several nodes start together). */
  migrate(migrations: Record<string, Migration>): Promise<void>;
  /** Resolves when the store answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs the reads of `fn` on one consistent view of the store, e.g. rows and the stream position
 * they belong to. PostgreSQL: a REPEATABLE READ, READ ONLY transaction (under the default READ
 * COMMITTED each statement takes its own snapshot, so two statements can see different commits).
 * SQLite: one transaction (a read transaction keeps the WAL snapshot of its first read; Kysely's
 * single connection also keeps this process's other statements out until it ends).
 */
export function readSnapshot<DB, T>(
  store: Pick<Store, 'dialect'>,
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const builder = db.transaction();
  return (
    store.dialect === 'postgres'
      ? builder.setIsolationLevel('repeatable read').setAccessMode('read only')
      : builder
  ).execute(fn);
}

export interface StoreOptions {
  /** `postgres://…` selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir?: string;
  /** SQLite file name inside dataDir (default `pulse.db`); `:memory:` for a throwaway store. */
  sqliteFile?: string;
}

export function createStore(opts: StoreOptions): Store {
  const url = opts.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // NOTE: an idle client's error (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    // NOTE: the pool listens only while a client is idle. A checked-out client whose connection dies
    // between two statements (a restart, pg_terminate_backend) emits 'error' with no listener, which
    // would crash the process; with this one the next statement fails instead (the transaction
    // rejects) and the pool drops the broken client on release.
    pool.on('connect', (client) => client.on('error', () => {}));
    return wrap('postgres', new Kysely({ dialect: new PostgresDialect({ pool }) }));
  }
  if (url) throw new Error(`Unsupported DATABASE_URL scheme: ${url.split(':')[0]} (use postgres://)`);
  const file = opts.sqliteFile ?? 'pulse.db';
  let path = file;
  if (file !== ':memory:') {
    const dir = opts.dataDir ?? './data';
    mkdirSync(dir, { recursive: true });
    path = join(dir, file);
  }
  const database = new SQLite(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  return wrap('sqlite', new Kysely({ dialect: new SqliteDialect({ database: cachedStatements(database) }) }));
}

/**
 * Kysely's SQLite driver prepares every statement anew; preparing was ~15% of the CPU of a durable
 * send (bench/src/durable-writes.ts). Statements are kept by SQL text (at most `max`, oldest out).
 * Safe because better-sqlite3 runs a statement to completion synchronously and Pulse streams no
 * query (`iterate` would keep a statement busy); SQLite re-prepares a kept statement itself after a
 * schema change.
 */
function cachedStatements(database: SQLite.Database, max = 256) {
  const kept = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let stmt = kept.get(sqlText);
      if (stmt) return stmt;
      stmt = database.prepare(sqlText);
      if (kept.size >= max) kept.delete(kept.keys().next().value as string);
      kept.set(sqlText, stmt);
      return stmt;
    },
  };
}

// biome-ignore lint/complexity/noBannedTypes: see Store.db
function wrap(dialect: StoreDialect, db: Kysely<{}>): Store {
  return {
    dialect,
    db,
    async migrate(migrations) {
      const migrator = new Migrator({
        db,
        provider: { getMigrations: async () => migrations },
        migrationTableName: 'pulse_migrations',
        migrationLockTableName: 'pulse_migrations_lock',
      });
      const { error, results } = await migrator.migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error')?.migrationName;
        throw new Error(`Store migration ${failed ?? ''} failed: ${(error as Error).message ?? error}`, {
          cause: error,
        });
      }
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
