/**
 * `npm run bench`: raw ws, Socket.IO and Pulse doing the same fan-out job, in one run. Prints a
 * table with ratios and rewrites the generated section of BENCHMARKS.md.
 *
 * Environment (all optional): BENCH_QUICK=1 (small N, short windows), BENCH_N=1000,5000,
 * BENCH_SERVERS=ws,socketio,pulse-dashboard, BENCH_VARIANTS=ws-deflate,ws-msgpack (or "none"),
 * BENCH_VARIANT_N, BENCH_ROUNDS, BENCH_GAP_MS, BENCH_DURATION_MS, BENCH_WINDOW, BENCH_PACED_RATE, BENCH_PACED_MS, BENCH_PIN=0,
 * BENCH_WRITE=0 (do not touch BENCHMARKS.md), BENCH_OUT (path), BENCH_MAX_MINUTES. Past N = 20,000
 * (BENCH_N=50000) the load clients run one process per 10,000 sockets, each from its own loopback
 * address; the 50,000-socket release check is its own command (`npm run bench:50k`, fifty.ts).
 *
 * Other trees in the same run (see trees.ts): BENCH_BASELINE_REF=<commit> runs the Pulse servers of
 * that commit too (BENCH_BASELINE_SERVERS, BENCH_BASELINE_N: default the Pulse kinds at the largest
 * N), each right after the same scenario of this tree; BENCH_NODE_LINES=26[,24] runs every server
 * on those Node lines too (BENCH_LINE_SERVERS, BENCH_LINE_N: default all at the largest N), and the
 * durable-write bench on them. BENCH_FRAMING_AB=1 runs the Pulse kinds at the largest N once more
 * with PULSE_WS_FRAMING=ws (frames through ws's own send, not Pulse's header writer).
 * BENCH_DURABLE=0 leaves the durable-write bench out. After the fan-out, the accept-rate bench
 * (accept.ts) and the reconnect-storm bench (storm.ts) run as their own processes and write their
 * own sections (BENCH_ACCEPT=0 / BENCH_STORM=0 leave them out; neither runs in quick mode).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostLine, type NodeLine, renderDurableMarkdown, runDurableBench } from './durable-writes.js';
import { runScenario, type ServerTree } from './harness.js';
import { renderMarkdown, renderText, renderTreeComparison, type Row } from './report.js';
import { prepareBaseline, prepareNodeLine } from './trees.js';
import { type ServerKind, serverKinds } from './shared.js';

const env = process.env;
const srcDir = dirname(fileURLToPath(import.meta.url));
const quick = env.BENCH_QUICK === '1';
const list = (value: string | undefined, fallback: string[]) =>
  value === undefined
    ? fallback
    : value === 'none'
      ? []
      : value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
const num = (value: string | undefined, fallback: number) => (value ? Number(value) : fallback);

const ns = list(env.BENCH_N, quick ? ['200', '1000'] : ['1000', '5000', '10000']).map(Number);
const servers = list(env.BENCH_SERVERS, [
  'ws',
  'socketio',
  'pulse-dashboard',
  'pulse-notifications',
  'pulse-channel',
]);
const variants = list(env.BENCH_VARIANTS, quick ? [] : ['ws-deflate', 'ws-msgpack']);
const variantN = num(env.BENCH_VARIANT_N, 5000);
for (const kind of [...servers, ...variants]) {
  if (!(serverKinds as readonly string[]).includes(kind)) throw new Error(`Unknown server kind "${kind}"`);
}
const settings = {
  latencyRounds: num(env.BENCH_ROUNDS, quick ? 3 : 8),
  gapMs: num(env.BENCH_GAP_MS, quick ? 50 : 150),
  throughputMs: num(env.BENCH_DURATION_MS, quick ? 1000 : 4000),
  window: num(env.BENCH_WINDOW, 8),
  pacedRate: num(env.BENCH_PACED_RATE, 40_000),
  pacedMs: num(env.BENCH_PACED_MS, quick ? 1000 : 3000),
};
const top = String(Math.max(...ns));
const baselineRef = env.BENCH_BASELINE_REF;
const baselineServers = list(
  env.BENCH_BASELINE_SERVERS,
  // NOTE: pulse-channel is left out by default: an older commit may predate channels.
  servers.filter((k) => k === 'pulse-dashboard' || k === 'pulse-notifications'),
);
const baselineNs = list(env.BENCH_BASELINE_N, [top]).map(Number);
const lineMajors = list(env.BENCH_NODE_LINES, []);
const lineServers = list(env.BENCH_LINE_SERVERS, servers);
const lineNs = list(env.BENCH_LINE_N, [top]).map(Number);
const durable = env.BENCH_DURABLE !== '0' && !quick;
const maxMinutes = num(env.BENCH_MAX_MINUTES, baselineRef || lineMajors.length ? 40 : 14);

function canPin(): boolean {
  if (env.BENCH_PIN === '0' || cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

const pin = canPin();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
const loadBefore = load();
const started = Date.now();
const rows: Row[] = [];
const trees: ServerTree[] = [];
const baseline = baselineRef ? prepareBaseline(baselineRef, console.log) : undefined;
if (baseline) trees.push(baseline);
const lines = lineMajors.map((major) => prepareNodeLine(major, console.log));
trees.push(...lines);
const framing: ServerTree | undefined =
  env.BENCH_FRAMING_AB === '1'
    ? {
        label: 'ws-framing',
        root: join(dirname(fileURLToPath(import.meta.url)), '..', '..'),
        node: process.execPath,
        env: { PULSE_WS_FRAMING: 'ws' },
      }
    : undefined;
if (framing) trees.push(framing);
const versionOf = (node: string) => execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
const plan: Array<{ kind: ServerKind; n: number; tree?: ServerTree }> = [];
for (const n of ns) {
  for (const kind of servers) {
    plan.push({ kind: kind as ServerKind, n });
    // NOTE: each other tree's scenario right after this tree's, so both meet the same machine state.
    if (baseline && baselineServers.includes(kind) && baselineNs.includes(n))
      plan.push({ kind: kind as ServerKind, n, tree: baseline });
    for (const line of lines)
      if (lineServers.includes(kind) && lineNs.includes(n))
        plan.push({ kind: kind as ServerKind, n, tree: line });
    if (framing && kind.startsWith('pulse-') && String(n) === top)
      plan.push({ kind: kind as ServerKind, n, tree: framing });
  }
}
for (const kind of variants) plan.push({ kind: kind as ServerKind, n: variantN });

console.log(
  `Pulse fan-out bench: N=${ns.join('/')}, servers ${servers.join(', ')}${variants.length ? `; variants ${variants.join(', ')} at N=${variantN}` : ''}; pinned: ${pin}`,
);
for (const { kind, n, tree } of plan) {
  const label = tree ? { label: tree.label } : {};
  if ((Date.now() - started) / 60_000 > maxMinutes) {
    rows.push({ kind, n, ...label, error: `skipped: over the ${maxMinutes}-minute budget` });
    continue;
  }
  try {
    rows.push(await runScenario({ kind, n, pin, tree, ...settings, log: console.log }));
  } catch (error) {
    console.error(`  ${kind}${tree ? `@${tree.label}` : ''} N=${n} failed: ${(error as Error).message}`);
    rows.push({ kind, n, ...label, error: (error as Error).message });
  }
}
const extra: string[] = [];
const here = `Node ${process.versions.node}`;
if (baseline) {
  extra.push(
    '',
    `#### Before/after: commit ${baseline.label} (before) vs this tree (after), same run`,
    '',
    `Each ${baseline.label} scenario ran right after the same scenario of this tree; both on ${here}, same load clients.`,
    '',
    renderTreeComparison(rows, baseline.label, 'this tree'),
  );
}
for (const line of lines) {
  extra.push(
    '',
    `#### ${versionOf(line.node)} (${line.label}) vs ${here}, same run`,
    '',
    `Each server process ran on ${versionOf(line.node)} right after the same scenario on ${here}; the load clients ran on ${here} for both.`,
    '',
    renderTreeComparison(rows, line.label, here.replace('Node ', 'v')),
  );
}
if (framing) {
  extra.push(
    '',
    "#### Frames through ws's own `send` (PULSE_WS_FRAMING=ws) vs Pulse's header writer, same run",
    '',
    "Same tree and Node; the only change is how a fast-path frame is written: ws's `send` (header built per send, two writes corked by ws) instead of the pre-built header + shared tail on the TCP socket.",
    '',
    renderTreeComparison(rows, framing.label, 'header writer'),
  );
}
if (durable) {
  const nodeLines: NodeLine[] = [
    hostLine,
    ...lines.map((l) => ({ label: `Node ${versionOf(l.node).slice(1)}`, node: l.node, root: l.root })),
  ];
  const durableLoad = load();
  const { rows: durableRows, pgError } = await runDurableBench({ lines: nodeLines, pin, log: console.log });
  const md = renderDurableMarkdown(durableRows, {
    date: new Date().toISOString(),
    loadBefore: durableLoad,
    loadAfter: load(),
    pinned: pin,
    pgError,
  });
  console.log(`\n${md}`);
  extra.push('', '#### Durable writes: Pulse beside the bare driver (bench/src/durable-writes.ts)', '', md);
}
const minutes = (Date.now() - started) / 60_000;
console.log(renderText(rows));
for (const tree of trees) console.log(`\n${tree.label}:\n${renderTreeComparison(rows, tree.label, 'here')}`);

if (env.BENCH_WRITE !== '0') {
  const out = env.BENCH_OUT ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'BENCHMARKS.md');
  const generated = renderMarkdown(rows, {
    date: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.versions.node,
    loadBefore,
    loadAfter: load(),
    pinned: pin,
    minutes,
    settings: `${settings.latencyRounds} latency rounds ${settings.gapMs} ms apart (after one warm-up broadcast); CPU per delivery over ${settings.pacedMs} ms at ${settings.pacedRate} deliveries/s offered; deliveries/s over ${settings.throughputMs} ms with ${settings.window} events in flight`,
  });
  const begin = '<!-- bench:begin (generated by `npm run bench`; edits inside are overwritten) -->';
  const end = '<!-- bench:end -->';
  const section = `${begin}\n${generated}${extra.length ? `\n${extra.join('\n')}` : ''}\n${end}`;
  const current = existsSync(out)
    ? readFileSync(out, 'utf8')
    : `# Benchmarks\n\n## Latest run\n\n${begin}\n${end}\n`;
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  const next =
    from >= 0 && to > from
      ? current.slice(0, from) + section + current.slice(to + end.length)
      : `${current.trimEnd()}\n\n## Latest run\n\n${section}\n`;
  writeFileSync(out, next);
  console.log(`\nWrote ${out}`);
}
// NOTE: each in its own process, after the fan-out's servers are gone; they read the same BENCH_* env.
for (const [name, script, on] of [
  ['accept rate', 'accept.ts', env.BENCH_ACCEPT !== '0' && !quick],
  ['reconnect storms', 'storm.ts', env.BENCH_STORM !== '0' && !quick],
] as const) {
  if (!on) continue;
  console.log(`\n== ${name} (${script})`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(srcDir, script)],
    {
      stdio: 'inherit',
      env,
      cwd: join(srcDir, '..'),
    },
  );
  if (result.status !== 0) console.error(`  ${name}: exited ${result.status ?? result.signal}`);
}
process.exit(0);
