import { afterEach, describe, expect, it, vi } from 'vitest';
import { type DemoTarget, startDemoGenerator } from './generator.js';

/** A deterministic random source (a 32-bit LCG), so every run schedules the same traffic. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A target that records every call the generator makes (publisher, service caller, teammates). */
function recordingTarget() {
  const calls: string[] = [];
  let messages = 0;
  const publish = new Proxy(
    {},
    {
      get: (_target, name) => async () => {
        calls.push(String(name));
        return {};
      },
    },
  );
  const target = {
    publish,
    caller: {
      inbox: {
        receive: async () => {
          calls.push('inbox.receive');
          messages += 1;
          return { conversation: { id: 'conv-1' }, message: { id: `msg-${messages}` }, created: true };
        },
      },
      dashboard: { history: async () => ({ series: [] }) },
    },
    callerFor: () => ({
      inbox: {
        send: async () => {
          calls.push('inbox.send');
          return {};
        },
      },
    }),
  };
  return { calls, target: target as unknown as DemoTarget };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('demo generator', () => {
  it('stop() clears every timer: nothing is published after it, however long the clock runs', async () => {
    vi.useFakeTimers();
    const { calls, target } = recordingTarget();
    const generator = startDemoGenerator(target, { tickMs: 100, backfillHours: 0, random: seeded(7) });
    // A minute of traffic: ticks, inbound messages, teammates' replies (4-15 s after a message)…
    await vi.advanceTimersByTimeAsync(60_000);
    expect([...new Set(calls)]).toEqual(
      expect.arrayContaining(['broadcastFollowerUpdate', 'inbox.receive', 'inbox.send']),
    );
    expect(vi.getTimerCount()).toBeGreaterThan(0);

    await generator.stop();
    const published = calls.length;
    const stats = generator.stats();
    expect(Object.values(stats).reduce((a, b) => a + b, 0)).toBe(published);
    expect(vi.getTimerCount()).toBe(0);
    // A day later (crisis alerts come every 160 ticks, replies up to 15 s late): still nothing new.
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    expect(calls).toHaveLength(published);
    expect(generator.stats()).toEqual(stats);
  });
});
