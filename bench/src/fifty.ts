/**
 * `npm run bench:50k -w @pulse/bench`: 50,000 sockets on one node, a release check (not in CI, not
 * part of `npm run bench`). Each server process holds every socket; the load clients run one process
 * per 10,000 sockets, each from its own loopback source address (127.0.0.2, 127.0.0.3…). Rewrites
 * the generated part of BENCHMARKS.md's "50,000 sockets on one node" section.
 *
 * Target: the last of the N subscribers has a published event within 1 s, nothing dropped, no
 * connect failed.
 *
 * Environment (all optional): BENCH_N=50000 (a list: 50000,19000), BENCH_SERVERS=ws,pulse-dashboard,
 * pulse-notifications (socketio too), BENCH_ROUNDS (latency rounds, 5), BENCH_GAP_MS (1000),
 * BENCH_PACED_RATE (deliveries/s offered, 40000), BENCH_PACED_MS (8000), BENCH_DURATION_MS (4000),
 * BENCH_WINDOW (4), BENCH_SOCKETS_PER_CLIENT (10000), BENCH_PIN=0 (no taskset: server and clients
 * share both cores), BENCH_WRITE=0 (leave BENCHMARKS.md alone), BENCH_OUT, BENCH_MAX_MINUTES (40).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScenario, type ScenarioResult } from './harness.js';
import { type ServerKind, serverKinds } from './shared.js';

const env = process.env;
const num = (value: string | undefined, fallback: number) => (value ? Number(value) : fallback);
const list = (value: string | undefined, fallback: string[]) =>
  (value ?? fallback.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const ns = list(env.BENCH_N, ['50000']).map(Number);
const servers = list(env.BENCH_SERVERS, ['ws', 'pulse-dashboard', 'pulse-notifications']);
for (const kind of servers)
  if (!(serverKinds as readonly string[]).includes(kind)) throw new Error(`Unknown server kind "${kind}"`);
const perClient = num(env.BENCH_SOCKETS_PER_CLIENT, 10_000);
const settings = {
  latencyRounds: num(env.BENCH_ROUNDS, 5),
  // NOTE: a second between rounds, so each broadcast meets an idle server and idle clients.
  gapMs: num(env.BENCH_GAP_MS, 1000),
  throughputMs: num(env.BENCH_DURATION_MS, 4000),
  window: num(env.BENCH_WINDOW, 4),
  pacedRate: num(env.BENCH_PACED_RATE, 40_000),
  pacedMs: num(env.BENCH_PACED_MS, 8000),
};
const maxMinutes = num(env.BENCH_MAX_MINUTES, 40);
const TARGET_MS = 1000;

function canPin(): boolean {
  if (env.BENCH_PIN === '0' || cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}
const hardLimit = () => {
  try {
    return execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
};

type Row = ScenarioResult | { kind: ServerKind; n: number; error: string };
const isResult = (row: Row): row is ScenarioResult => !('error' in row);
const fmt = (value: number, digits = 1) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : Number.NaN;
};

/** PASS only when every socket subscribed, every round's last arrival was within 1 s, nothing dropped. */
function verdict(row: ScenarioResult): { pass: boolean; why: string[] } {
  const why: string[] = [];
  if (row.subscribed < row.n || row.failed > 0)
    why.push(`${row.n - row.subscribed} of ${row.n} not subscribed`);
  const worst = Math.max(...row.lasts);
  if (!(worst <= TARGET_MS)) why.push(`last socket ${fmt(worst, 0)} ms after publish`);
  if (row.dropped > 0) why.push(`${row.dropped} dropped`);
  if (row.errors > 0) why.push(`${row.errors} error frames`);
  if (row.closed > 0) why.push(`${row.closed} closed`);
  return { pass: why.length === 0, why };
}

const columns = [
  'server',
  'N',
  'subscribed',
  'connect s',
  'last ms (median)',
  'last ms (max)',
  'p50 ms',
  'RSS/sub KB',
  'heap/sub KB',
  'CPU µs/delivery (paced)',
  'deliveries/s',
  'client CPU',
  'dropped',
  'server fd limit',
  'target',
];

function cells(row: Row): string[] {
  if (!isResult(row)) return [row.kind, String(row.n), `error: ${row.error.split('\n')[0]?.slice(0, 100)}`];
  const { pass, why } = verdict(row);
  return [
    row.kind,
    row.n.toLocaleString('en-US'),
    `${row.subscribed.toLocaleString('en-US')}${row.failed ? ` (${row.failed.toLocaleString('en-US')} failed${row.firstError ? `: ${row.firstError}` : ''})` : ''}`,
    fmt(row.connectMs / 1000),
    fmt(median(row.lasts), 0),
    fmt(Math.max(...row.lasts), 0),
    fmt(row.latency.p50, 0),
    fmt(row.rssPerSubscriber / 1024, 2),
    fmt(row.heapPerSubscriber / 1024, 2),
    fmt(row.cpuPerDelivery, 2),
    fmt(row.deliveriesPerSec, 0),
    fmt(row.clientCpu, 2),
    `${row.dropped}${row.errors ? ` / ${row.errors} err` : ''}${row.closed ? ` / ${row.closed} closed` : ''}`,
    row.fdLimit === undefined ? 'n/a' : row.fdLimit.toLocaleString('en-US'),
    pass ? 'PASS' : `FAIL (${why.join('; ')})`,
  ];
}

const table = (rows: Row[]) =>
  [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map((c, i) => (i === 0 || c === 'target' ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((row) => `| ${cells(row).join(' | ')} |`),
  ].join('\n');

const pin = canPin();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
const loadBefore = load();
const started = Date.now();
console.log(
  `50,000-socket bench: N=${ns.join('/')}, servers ${servers.join(', ')}; pinned: ${pin}; descriptors: soft ${execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()}, hard ${hardLimit()}; load ${loadBefore}`,
);
const rows: Row[] = [];
for (const n of ns) {
  for (const kind of servers as ServerKind[]) {
    if ((Date.now() - started) / 60_000 > maxMinutes) {
      rows.push({ kind, n, error: `skipped: over the ${maxMinutes}-minute budget` });
      continue;
    }
    const loadAt = load();
    try {
      const row = await runScenario({
        kind,
        n,
        pin,
        ...settings,
        clientProcesses: Math.max(2, Math.ceil(n / perClient)),
        sourceAddresses: true,
        log: console.log,
      });
      rows.push(row);
      console.log(
        `  ${kind} N=${n}: last ${row.lasts.map((l) => fmt(l, 0)).join(' / ')} ms; load ${loadAt} → ${load()}`,
      );
    } catch (error) {
      console.error(`  ${kind} N=${n} failed: ${(error as Error).message}`);
      rows.push({ kind, n, error: (error as Error).message });
    }
  }
}
const minutes = (Date.now() - started) / 60_000;
const md = [
  `Run ${new Date().toISOString()}: ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.versions.node}; ` +
    `load average (1/5/15 min) ${loadBefore} before, ${load()} after; ${fmt(minutes)} min; ` +
    `${pin ? 'server pinned to core 0, every load client to core 1' : 'not pinned'}; ` +
    `descriptor limit of the runner: hard ${hardLimit()}.`,
  '',
  `${settings.latencyRounds} latency rounds ${settings.gapMs} ms apart after one warm-up broadcast ("last ms": publish until the last subscriber had it, per round); ` +
    `CPU per delivery over ${settings.pacedMs} ms at ${settings.pacedRate} deliveries/s offered; deliveries/s over ${settings.throughputMs} ms with ${settings.window} events in flight; ` +
    `one load client process per ${perClient.toLocaleString('en-US')} sockets, each from its own source address (127.0.0.2…). ` +
    `Target: every socket subscribed, the last within ${TARGET_MS} ms of publish in every round, nothing dropped.`,
  '',
  table(rows),
].join('\n');
console.log(`\n${md}`);

if (env.BENCH_WRITE !== '0') {
  const out = env.BENCH_OUT ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'BENCHMARKS.md');
  const begin = '<!-- bench:50k:begin (generated by `npm run bench:50k -w @pulse/bench`) -->';
  const end = '<!-- bench:50k:end -->';
  const current = existsSync(out) ? readFileSync(out, 'utf8') : '# Benchmarks\n';
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  const section = `${begin}\n${md}\n${end}`;
  writeFileSync(
    out,
    from >= 0 && to > from
      ? current.slice(0, from) + section + current.slice(to + end.length)
      : `${current.trimEnd()}\n\n## 50,000 sockets on one node\n\n${section}\n`,
  );
  console.log(`\nWrote ${out}`);
}
process.exit(0);
