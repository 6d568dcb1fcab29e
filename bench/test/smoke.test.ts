/**
 * Smoke run of the bench harness (no timing assertions): every server kind starts in its own
 * process, 20 load-client sockets subscribe, and every client receives every event.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../src/harness.js';
import type { ServerKind } from '../src/shared.js';
import { smallRun } from './small-run.js';

const kinds: ServerKind[] = ['ws', 'socketio', 'pulse-dashboard', 'pulse-notifications'];

describe('bench harness', () => {
  it.each(kinds)('%s: 20 subscribers receive every event', { timeout: 60_000 }, async (kind) => {
    const result = await runScenario({
      kind,
      n: 20,
      ...smallRun,
    });
    expect(result.subscribed).toBe(20);
    expect(result.failed).toBe(0);
    expect(result.published).toBeGreaterThanOrEqual(3);
    expect(result.errors).toBe(0);
    expect(result.dropped).toBe(0);
    expect(result.deliveriesPerSec).toBeGreaterThan(0);
    // Resumable streams carry their tracked ids on every delivery.
    if (kind === 'pulse-notifications') expect(result.trackedIds).toBe(result.published * 20);
  });
});
