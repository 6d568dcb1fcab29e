import { describe, expect, it } from 'vitest';
import { runChaos } from '../src/chaos.js';
import { faultKinds } from '../src/faults.js';

// The CI-length run: a fixed seed, 150 s of faults (about three minutes in all): durable
// notifications, presence, the custom durable channel, the inbox and its SLA, dashboard values. It must pass every
// time; a failure prints the seed, the fault timeline and the first violating history (a flake is
// a bug to find: RELIABILITY.md lists what runs found).
const SEED = Number(process.env.CHAOS_SEED ?? 19);
const DURATION_MS = Number(process.env.CHAOS_DURATION_S ?? 150) * 1000;
const CLIENTS = Number(process.env.CHAOS_CLIENTS ?? 120);

describe('chaos (CI length)', () => {
  it(`seed ${SEED}: no violation under every fault kind, with events checked`, async () => {
    const report = await runChaos({ seed: SEED, durationMs: DURATION_MS, clients: CLIENTS, log: () => {} });
    console.log(report.text);
    expect(report.violations.map((v) => `[${v.rule}] ${v.detail}`)).toEqual([]);
    for (const kind of faultKinds) expect(report.faultCounts[kind], kind).toBeGreaterThan(0);
    expect(report.stats.checkedClients).toBe(CLIENTS);
    expect(report.stats.checkedEvents).toBeGreaterThan(0);
    expect(report.stats.publishes).toBeGreaterThan(0);
    expect(report.stats.duplicatePublishes).toBeGreaterThan(0);
    // A quarter of the clients each follow the custom channel, the inbox and the dashboard.
    expect(report.stats.channelClients).toBe(CLIENTS / 4);
    expect(report.stats.inboxClients).toBe(CLIENTS / 4);
    expect(report.stats.dashboardClients).toBe(CLIENTS / 4);
    expect(report.stats.channelEvents).toBeGreaterThan(0);
    expect(report.stats.inboxEvents).toBeGreaterThan(0);
    expect(report.stats.dashboardSets).toBeGreaterThan(0);
    // Some clocks escalated (checked: once each), some were answered first (checked: none).
    expect(report.stats.slaEscalated).toBeGreaterThan(0);
    expect(report.stats.slaAnswered).toBeGreaterThan(0);
  });
});
