/**
 * Smoke run of the reconnect-storm bench (no timing assertions): 20 clients per scenario, real
 * processes, PostgreSQL and Redis. After a SIGKILL restart and after a drain to a second node every
 * Pulse client is back with every published event exactly once; every Socket.IO client reconnects
 * (its losses are Socket.IO's: no replay).
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runStormBench, type StormRow, type StormVariant } from '../src/storm.js';

const databaseUrl = process.env.STORM_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** PostgreSQL and Redis accept TCP connections (the bench needs both). */
async function reachable(url: string, fallbackPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const ok = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || fallbackPort), timeout: 2000 });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
  if (!ok) {
    if (process.env.CI === 'true') throw new Error(`${url} is required in CI but unreachable`);
    console.warn(`[skip] ${url} unreachable`);
  }
  return ok;
}

const available =
  (await reachable(databaseUrl, 5432)) &&
  (await reachable(process.env.STORM_REDIS_URL ?? 'redis://127.0.0.1:6379', 6379));

async function run(variant: StormVariant): Promise<StormRow> {
  const [row] = await runStormBench({
    n: 20,
    variants: [variant],
    rate: 10,
    warmMs: 500,
    settleMs: 500,
    databaseUrl,
    redisUrl: process.env.STORM_REDIS_URL,
  });
  if (!row || 'error' in row)
    throw new Error(`storm failed: ${row && 'error' in row ? row.error : 'no row'}`);
  return row;
}

describe.skipIf(!available)('reconnect-storm bench', () => {
  it.each(['pulse-restart', 'pulse-drain'] as const)(
    '%s: every client resumes with every event exactly once',
    { timeout: 120_000 },
    async (variant) => {
      const row = await run(variant);
      expect(row.connected).toBe(20);
      expect(row.disconnected).toBe(20);
      expect(row.resumed).toBe(20);
      expect(row.published).toBeGreaterThan(5);
      expect(row.lost).toBe(0);
      expect(row.duplicated).toBe(0);
      expect(row.errors).toBe(0);
      expect(row.peakRssMb).toBeGreaterThan(0);
    },
  );

  it('socketio-restart: every client reconnects; nothing is delivered twice', {
    timeout: 120_000,
  }, async () => {
    const row = await run('socketio-restart');
    expect(row.connected).toBe(20);
    expect(row.disconnected).toBe(20);
    expect(row.resumed).toBe(20);
    expect(row.published).toBeGreaterThan(5);
    expect(row.duplicated).toBe(0);
    expect(row.errors).toBe(0);
  });
});
