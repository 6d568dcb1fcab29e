/**
 * The 50,000-socket run's machinery at a small N (no timing assertions): load clients on their own
 * loopback source addresses, and a server that runs out of descriptors, as a node holding 50,000
 * sockets under a 20,000 descriptor limit does. Refused connects are counted as failed; the
 * subscribers that did connect still get every event; the server still reports its memory.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../src/harness.js';
import type { ServerKind } from '../src/shared.js';
import { smallRun } from './small-run.js';

const kinds: ServerKind[] = ['ws', 'pulse-dashboard'];

describe('bench harness past the descriptor limit', () => {
  it.each(kinds)('%s: connects past the limit fail and are counted', { timeout: 90_000 }, async (kind) => {
    const result = await runScenario({
      kind,
      n: 400,
      ...smallRun,
      clientProcesses: 2,
      sourceAddresses: true,
      // NOTE: room for Pulse's start (tsx opens its modules concurrently), not for 400 sockets.
      serverDescriptors: 256,
    });
    expect(result.fdLimit).toBe(256);
    expect(result.sources).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(result.failed).toBeGreaterThan(0);
    expect(result.subscribed).toBeGreaterThan(0);
    expect(result.subscribed + result.failed).toBe(400);
    expect(result.firstError).toBeTypeOf('string');
    // A failed connect is not a subscriber that closed, and every subscriber had every event.
    expect(result.closed).toBe(0);
    expect(result.errors).toBe(0);
    expect(result.dropped).toBe(0);
    expect(result.lasts.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(result.rssPerSubscriber)).toBe(true);
  });
});
