/**
 * Dashboard publish throughput on SQLite and PostgreSQL: sequential and 16 concurrent publishers,
 * over the service (store + hub on a memory bus, no sockets). Run from packages/server:
 *   DATABASE_TEST_URL=postgres://postgres@127.0.0.1:5432/test npx tsx scripts/bench-dashboard-publish.ts
 * Used to compare publish before and after the history table (docs/dashboard.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DashboardService } from '../src/dashboard/dashboard.service.js';
import { dashboardMigrations } from '../src/dashboard/dashboard.tables.js';
import { createMemoryBus } from '../src/infra/bus/memory-bus.js';
import { Hub } from '../src/infra/hub.js';
import { createStore } from '../src/infra/store/db.js';

const N = Number(process.env.BENCH_N ?? 4000);

async function run(name: string, storeOpts: Parameters<typeof createStore>[0], cleanup: () => Promise<void>) {
  const store = createStore(storeOpts);
  await store.migrate(dashboardMigrations);
  const hub = new Hub(createMemoryBus());
  const dashboard = new DashboardService({ hub, store, history: { rollupMs: 0 } } as never);
  const value = (i: number) => ({
    workspaceId: 'acme',
    kind: 'metric' as const,
    platform: 'instagram' as const,
    accountId: `acct-${i % 8}`,
    metric: 'impressions',
    value: i,
  });
  for (let i = 0; i < 200; i += 1) await dashboard.publish(value(i)); // warm-up
  let start = performance.now();
  for (let i = 0; i < N; i += 1) await dashboard.publish(value(i));
  const sequential = (N / (performance.now() - start)) * 1000;
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < N) {
        next += 1;
        await dashboard.publish(value(next));
      }
    }),
  );
  const concurrent = (N / (performance.now() - start)) * 1000;
  console.log(`${name}: sequential ${sequential.toFixed(0)}/s, 16 concurrent ${concurrent.toFixed(0)}/s`);
  await (dashboard as { close?: () => Promise<void> }).close?.();
  await hub.close();
  await store.close();
  await cleanup();
}

const dir = mkdtempSync(join(tmpdir(), 'pulse-bench-'));
await run('sqlite (file)', { dataDir: dir, sqliteFile: 'bench.db' }, async () =>
  rmSync(dir, { recursive: true, force: true }),
);
const base = process.env.DATABASE_TEST_URL;
if (base) {
  const db = `pulse_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${db}`);
  const url = new URL(base);
  url.pathname = `/${db}`;
  await run('postgres', { databaseUrl: url.toString() }, async () => {
    await admin.query(`drop database ${db} with (force)`);
    await admin.end();
  });
}
