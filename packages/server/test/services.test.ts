import { describe, expect, it } from 'vitest';
import { createStore } from '../src/infra/store/db.js';
import { createTestDatabase, postgresUnavailable, redisUnavailable } from './support/vitest.js';

const pgDown = await postgresUnavailable();
const redisDown = await redisUnavailable();

describe('test services', () => {
  it.skipIf(pgDown !== null)(
    'gives each test a private PostgreSQL database that the store can use',
    async () => {
      await using database = await createTestDatabase();
      const store = createStore({ databaseUrl: database.url });
      await store.ping();
      expect(store.dialect).toBe('postgres');
      await store.close();
    },
  );
  it.skipIf(redisDown !== null)('reaches Redis', () => {
    expect(redisDown).toBeNull();
  });
});
