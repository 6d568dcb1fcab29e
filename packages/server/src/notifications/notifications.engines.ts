import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TRPCClientError } from '@trpc/client';
import { vi } from 'vitest';
import { createTestDatabase, postgresUnavailable } from '../../test/services.js';
import type { PulseConfigInput } from '../config.js';
import type { AppRouter } from '../router.js';
import type { NotificationEvent } from './notifications.schema.js';

/**
 * Test support: the two store engines every notification test runs on. Each `setup()` returns a
 * fresh, persistent store (a SQLite file in a temp dir, or a private PostgreSQL database) that
 * survives a server restart, and a disposer that removes it.
 */
export interface EngineSetup extends AsyncDisposable {
  /** Server options pointing at this store (pass to `startTestServer`). */
  options: { config: PulseConfigInput; sqliteFile?: string };
}

export interface Engine {
  name: 'sqlite' | 'postgres';
  /** Why the engine is unavailable (only outside CI), or null. */
  unavailable: string | null;
  setup(): Promise<EngineSetup>;
}

export async function storeEngines(): Promise<Engine[]> {
  return [
    {
      name: 'sqlite',
      unavailable: null,
      async setup() {
        const dir = mkdtempSync(join(tmpdir(), 'pulse-notifications-'));
        return {
          options: { config: { dataDir: dir }, sqliteFile: 'pulse.db' },
          [Symbol.asyncDispose]: async () => rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'postgres',
      unavailable: await postgresUnavailable(),
      async setup() {
        const database = await createTestDatabase();
        return {
          options: { config: { databaseUrl: database.url } },
          [Symbol.asyncDispose]: () => database.drop(),
        };
      },
    },
  ];
}

/** What the official client hands `onData` for a tracked event. */
export interface Tracked {
  id: string;
  data: NotificationEvent;
}

/** The tRPC error code of a rejected call. */
export function codeOf(error: unknown): string | undefined {
  return (error as TRPCClientError<AppRouter>).data?.code;
}

/** The zod issues the error formatter attached to a BAD_REQUEST. */
export function issuesOf(error: unknown): Array<{ path: string[]; message: string }> {
  return (
    ((error as TRPCClientError<AppRouter>).data as { issues?: Array<{ path: string[]; message: string }> })
      ?.issues ?? []
  );
}

/** `vi.waitFor` with room for a loaded CI machine (2 cores shared by parallel test files). */
export function waitFor<T>(check: () => T | Promise<T>, opts: { timeout?: number } = {}): Promise<T> {
  return vi.waitFor(check, { timeout: opts.timeout ?? 5_000, interval: 20 });
}
