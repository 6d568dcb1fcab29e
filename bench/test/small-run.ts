import type { ScenarioOptions } from '../src/harness.js';

/** The bench tests' scenario: a few rounds, short windows, unpinned (what is measured does not matter). */
export const smallRun = {
  latencyRounds: 2,
  gapMs: 10,
  throughputMs: 300,
  window: 2,
  pacedRate: 200,
  pacedMs: 200,
  pin: false,
} satisfies Partial<ScenarioOptions>;
