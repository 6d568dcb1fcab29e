import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresUnavailable } from '../../../test/support/stores.js';
import { waitFor } from '../../../test/support/wait.js';
import { createStore, type Store } from './db.js';

const unavailable = await postgresUnavailable();

// Found by the chaos runner (tests/chaos, seed 1): a PostgreSQL restart killed a publisher process
// with "Unhandled 'error' event" from a pooled client that was checked out between two statements.
describe.skipIf(unavailable)('PostgreSQL store: a connection killed while checked out', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let store: Store;
  beforeAll(async () => {
    database = await createTestDatabase();
    store = createStore({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('fails the transaction with the connection error instead of crashing the process, then serves the next query', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const failed = store.db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        const pid = rows[0]!.pid;
        // Between two statements, nothing in flight: the server ends this backend.
        await admin.query('select pg_terminate_backend($1)', [pid]);
        await waitFor(
          async () =>
            (await admin.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0,
          { timeoutMs: 5_000, intervalMs: 20, message: 'backend still there' },
        );
        // The socket's close reaches the idle, checked-out client before the next statement.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await sql`select 1`.execute(trx);
      });
      await expect(failed).rejects.toThrow('Client has encountered a connection error and is not queryable');
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db);
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
    }
  });
});
