import type { Rng } from './prng.js';

export const faultKinds = [
  'node-kill',
  'node-stop',
  'redis-restart',
  'pg-restart',
  'pg-terminate',
  'proxy-stall',
  'conn-burst',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface PlannedFault {
  /** Offset from the start of the fault window, ms. */
  at: number;
  kind: FaultKind;
  /** Node index (node faults) or client group (stalls). */
  target: number;
  /** How long the fault lasts (down / stopped / stalled / burst held), ms. */
  durationMs: number;
}

export interface FaultRecord extends PlannedFault {
  startedAt: number;
  endedAt: number;
  note: string;
}

const durations: Record<FaultKind, [number, number]> = {
  'node-kill': [500, 3_000],
  'node-stop': [1_000, 5_000],
  'redis-restart': [300, 3_000],
  'pg-restart': [300, 2_000],
  'pg-terminate': [0, 0],
  'proxy-stall': [1_000, 6_000],
  'conn-burst': [1_000, 3_000],
};

/**
 * The fault schedule for a window of `windowMs`: every kind once in a seeded order, then seeded
 * picks until the window is full. Faults run one after another (each starts at its `at` or when
 * the previous one is over, whichever is later).
 */
export function planFaults(
  rng: Rng,
  windowMs: number,
  nodes: number,
  groups: number,
  kinds: readonly FaultKind[] = faultKinds,
): PlannedFault[] {
  const plan: PlannedFault[] = [];
  const order = [...kinds].sort(() => rng() - 0.5);
  let t = rng.int(2_000, 4_000);
  for (let i = 0; i < 1_000; i++) {
    const kind = i < order.length ? order[i]! : rng.pick(kinds);
    const [lo, hi] = durations[kind];
    const durationMs = rng.int(lo, hi);
    if (t + durationMs > windowMs && i >= order.length) break;
    plan.push({
      at: t,
      kind,
      target: kind === 'proxy-stall' ? rng.int(0, groups - 1) : rng.int(0, nodes - 1),
      durationMs,
    });
    // NOTE: restarts take a few seconds on top of the downtime (tsx start-up, migrations check).
    t += durationMs + rng.int(1_500, 5_000) + (kind === 'node-kill' ? 4_000 : 0);
  }
  return plan;
}

export function formatTimeline(records: FaultRecord[]): string {
  return records
    .map(
      (r) =>
        `  +${(r.startedAt / 1000).toFixed(1)}s…+${(r.endedAt / 1000).toFixed(1)}s ${r.kind}${
          r.kind === 'pg-terminate' ||
          r.kind === 'redis-restart' ||
          r.kind === 'pg-restart' ||
          r.kind === 'conn-burst'
            ? ''
            : ` #${r.target}`
        } (${r.durationMs} ms)${r.note ? ` — ${r.note}` : ''}`,
    )
    .join('\n');
}
