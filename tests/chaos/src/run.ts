// `npm run chaos -- --seed 42 --duration 180 --clients 200` (or CHAOS_SEED / CHAOS_DURATION_S /
// CHAOS_CLIENTS): one chaos run; exit code 1 when the checker found a violation.
import { parseArgs } from 'node:util';
import { runChaos } from './chaos.js';
import { type FaultKind, faultKinds } from './faults.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string' },
    clients: { type: 'string' },
    publishers: { type: 'string' },
    faults: { type: 'string' },
  },
});
const seed = Number(values.seed ?? process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const durationS = Number(values.duration ?? process.env.CHAOS_DURATION_S ?? 180);
const clients = Number(values.clients ?? process.env.CHAOS_CLIENTS ?? 200);
const publishers = Number(values.publishers ?? process.env.CHAOS_PUBLISHERS ?? 2);
for (const [name, v] of Object.entries({ seed, duration: durationS, clients, publishers }))
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);

console.log(
  `chaos: seed ${seed}, ${durationS}s of faults, ${clients} official clients, ${publishers} publishers`,
);
const faultList = (values.faults ?? process.env.CHAOS_FAULTS)?.split(',').filter(Boolean) as
  | FaultKind[]
  | undefined;
for (const f of faultList ?? [])
  if (!faultKinds.includes(f))
    throw new Error(`--faults: unknown kind ${f} (known: ${faultKinds.join(', ')})`);
const report = await runChaos({ seed, durationMs: durationS * 1000, clients, publishers, faults: faultList });
console.log(report.text);
process.exit(report.violations.length > 0 ? 1 : 0);
