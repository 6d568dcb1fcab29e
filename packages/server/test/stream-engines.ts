import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, postgresUnavailable } from './services.js';
import type { PulseConfigInput } from '../src/config.js';

/**
 * Test support: the two store engines the kernel's tests run on. Each `setup()` gives a fresh
 * store several nodes can open at once (a SQLite file in a temp dir, or a private PostgreSQL
 * database) and removes it when disposed.
 */
export interface StreamEngine {
  name: 'sqlite' | 'postgres';
  /** Why the engine is unavailable (only outside CI), or null. */
  unavailable: string | null;
  setup(): Promise<
    { config: Pick<PulseConfigInput, 'dataDir' | 'databaseUrl'>; sqliteFile?: string } & AsyncDisposable
  >;
}

export async function streamEngines(): Promise<StreamEngine[]> {
  return [
    {
      name: 'sqlite',
      unavailable: null,
      async setup() {
        const dir = mkdtempSync(join(tmpdir(), 'pulse-streams-'));
        return {
          config: { dataDir: dir },
          sqliteFile: 'pulse.db',
          [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'postgres',
      unavailable: await postgresUnavailable(),
      async setup() {
        const database = await createTestDatabase();
        return { config: { databaseUrl: database.url }, [Symbol.asyncDispose]: () => database.drop() };
      },
    },
  ];
}
