import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { PulseConfigInput } from '../../src/config.js';

/**
 * Real PostgreSQL and Redis for tests. Each test run gets its own database / key prefix.
 * When a service is unreachable the caller may skip with a printed reason — never when CI=true.
 */
export const POSTGRES_ADMIN_URL = process.env.DATABASE_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

const inCI = process.env.CI === 'true';

async function reachable(check: () => Promise<void>): Promise<string | null> {
  try {
    await check();
    return null;
  } catch (error) {
    return (error as Error).message || String(error);
  }
}

/** null when PostgreSQL answers; otherwise the reason (and in CI this throws instead). */
export async function postgresUnavailable(): Promise<string | null> {
  const reason = await reachable(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
    await client.connect();
    await client.end();
  });
  if (reason) {
    if (inCI)
      throw new Error(`PostgreSQL is required in CI but unreachable at ${POSTGRES_ADMIN_URL}: ${reason}`);
    console.warn(`[skip] PostgreSQL unreachable at ${POSTGRES_ADMIN_URL}: ${reason}`);
  }
  return reason;
}

/** A fresh, empty database for one test (file); dropped by `drop()` / `await using`. */
export async function createTestDatabase(): Promise<
  { url: string; drop(): Promise<void> } & AsyncDisposable
> {
  const name = `pulse_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = async () => {
    const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  };
  return { url: url.toString(), drop, [Symbol.asyncDispose]: drop };
}

/** null when Redis answers PING; otherwise the reason (and in CI this throws instead). */
export async function redisUnavailable(): Promise<string | null> {
  const { Redis } = await import('ioredis');
  const reason = await reachable(async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000 });
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.disconnect();
    }
  });
  if (reason) {
    if (inCI) throw new Error(`Redis is required in CI but unreachable at ${REDIS_URL}: ${reason}`);
    console.warn(`[skip] Redis unreachable at ${REDIS_URL}: ${reason}`);
  }
  return reason;
}

/** A key prefix no other run shares. */
export const uniquePrefix = () => `pulse-test-${randomBytes(5).toString('hex')}:`;

/** A fresh store of one engine (`StoreEngine.setup()`); disposing it removes the store. */
export interface StoreSetup extends AsyncDisposable {
  /** Store settings (spread into a config, or `createStore({ ...config, sqliteFile })`). */
  config: Pick<PulseConfigInput, 'dataDir' | 'databaseUrl'>;
  /** The SQLite file name inside `config.dataDir` (SQLite only). */
  sqliteFile?: string;
  /** The same, as options for `startTestServer` / `startPulseServer`. */
  options: { config: PulseConfigInput; sqliteFile?: string };
}

export interface StoreEngine {
  name: 'sqlite' | 'postgres';
  /** Why the engine is unavailable (only outside CI; in CI an unreachable service throws), or null. */
  unavailable: string | null;
  setup(): Promise<StoreSetup>;
}

/**
 * The store matrix: SQLite and PostgreSQL. Each `setup()` gives a fresh, persistent store that
 * several nodes can open at once and that survives a restart (a SQLite file in a temp dir, or a
 * private PostgreSQL database). Run a suite per engine and skip one whose `unavailable` is set:
 * `describe.skipIf(engine.unavailable)(engine.name, …)`.
 */
export async function storeEngines(): Promise<StoreEngine[]> {
  return [
    {
      name: 'sqlite',
      unavailable: null,
      async setup() {
        const dir = mkdtempSync(join(tmpdir(), 'pulse-store-'));
        const config = { dataDir: dir };
        return {
          config,
          sqliteFile: 'pulse.db',
          options: { config, sqliteFile: 'pulse.db' },
          [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'postgres',
      unavailable: await postgresUnavailable(),
      async setup() {
        const database = await createTestDatabase();
        const config = { databaseUrl: database.url };
        return { config, options: { config }, [Symbol.asyncDispose]: () => database.drop() };
      },
    },
  ];
}
