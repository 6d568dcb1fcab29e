/**
 * `npm run bench:accept`: how fast each server accepts new connections while N subscribers are
 * already connected. For each server and N: the server process (core 0), N idle subscribers
 * (`client.ts`, core 1), then one opener process (`accept-client.ts`, core 1) opening M new
 * connections, at most `concurrency` handshakes in flight, each doing what a real client does
 * before it is useful (Pulse: upgrade + connectionParams JWT + one subscription, accepted at its
 * first data frame, the snapshot or sync; Socket.IO: `40` → `40{sid}` and an acknowledged room join;
 * ws: open + one echoed message).
 *
 * Environment (all optional): ACCEPT_N=1000,10000, ACCEPT_M=2000, ACCEPT_CONCURRENCY=200,
 * ACCEPT_SERVERS=ws,socketio,pulse-dashboard,pulse-notifications, BENCH_PIN=0, BENCH_WRITE=0,
 * BENCH_OUT (path of BENCHMARKS.md), BENCH_PROFILE_DIR (a `--cpu-prof` of each server process, with
 * `window-<kind>-<n>-<pid>.json` marking the accept window for `src/profile-summary.ts`),
 * BENCH_PROFILE_INTERVAL (its sampling interval, µs).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AcceptClientOptions, AcceptClientReply } from './accept-client.js';
import type { ClientOptions } from './client.js';
import { protocolOf, type ServerKind, type ServerReply, WORKSPACE_ID } from './shared.js';

const srcDir = dirname(fileURLToPath(import.meta.url));

export interface AcceptOptions {
  kinds: ServerKind[];
  /** Idle subscribers already connected. */
  ns: number[];
  /** New connections per scenario. */
  m: number;
  /** Handshakes in flight at most. */
  concurrency: number;
  pin: boolean;
  log?: (line: string) => void;
}

export interface AcceptRow {
  kind: ServerKind;
  n: number;
  m?: number;
  accepted?: number;
  failed?: number;
  /** M accepted ÷ (first open → last accepted). */
  acceptsPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Server CPU (user + system) over the window ÷ accepted, µs. */
  cpuPerAccept?: number;
  /** The same, user time only (system time is charged softirq work of other processes too). */
  userCpuPerAccept?: number;
  /** Opener CPU share over the window (1 = one full core): near 1, the load client was the limit. */
  clientCpu?: number;
  reasons?: string[];
  /** Pulse: bytes of the first data frame (snapshot / sync) of a new subscription. */
  firstFrameBytes?: number;
  /** Server event-loop delay over the window, ms (p99, max; 10 ms resolution). */
  loopP99Ms?: number;
  loopMaxMs?: number;
  /** 1-minute load average when the scenario started. */
  load?: number;
  error?: string;
}

const procedures: Partial<Record<ServerKind, string>> = {
  'pulse-dashboard': 'dashboard.onUpdate',
  'pulse-notifications': 'notifications.onNotification',
};

/** A child process speaking IPC; `next(type)` waits (bounded) for its next reply of that type. */
class Child<TReply extends { type: string }> {
  private readonly listeners = new Set<(reply: TReply) => void>();
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (message: TReply) => {
      if (message.type === 'error') console.error(`[${name}] ${(message as { message?: string }).message}`);
      for (const listener of this.listeners) listener(message);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }
  send(command: object) {
    if (this.child.connected) this.child.send(command);
  }
  next<T extends TReply['type']>(type: T, timeoutMs: number): Promise<Extract<TReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.child.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited while waiting for "${type}"`));
      };
      const listener = (message: TReply) => {
        if (message.type === 'error' && type !== 'error') {
          done();
          reject(new Error(`${this.name}: ${(message as { message?: string }).message}`));
        } else if (message.type === type) {
          done();
          resolve(message as Extract<TReply, { type: T }>);
        }
      };
      this.child.once('exit', onExit);
      this.listeners.add(listener);
    });
  }
  async kill() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 4000);
    await this.exited;
    clearTimeout(timer);
  }
}

function spawnNode(script: string, args: string[], core: number | null, env: NodeJS.ProcessEnv) {
  const profile = script === 'server.ts' && process.env.BENCH_PROFILE_DIR;
  const node = [
    process.execPath,
    '--expose-gc',
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
    ...(profile && process.env.BENCH_PROFILE_INTERVAL
      ? [`--cpu-prof-interval=${process.env.BENCH_PROFILE_INTERVAL}`]
      : []),
    '--import',
    'tsx',
    '--conditions=source',
    join(srcDir, script),
    ...args,
  ];
  const command = core === null ? node : ['taskset', '-c', String(core), ...node];
  // NOTE: 12,000 sockets need more descriptors than the usual soft limit; raise it to the hard limit.
  return spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...command], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env,
    cwd: join(srcDir, '..'),
  });
}

/** Events published before the window (see `runAcceptScenario`). */
const SEED_EVENTS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One server, N idle subscribers, M new connections. Every process it starts is killed before it returns. */
export async function runAcceptScenario(
  kind: ServerKind,
  n: number,
  opts: Omit<AcceptOptions, 'kinds' | 'ns'>,
): Promise<AcceptRow> {
  const log = opts.log ?? (() => {});
  const load = loadavg()[0];
  const secret = randomBytes(32).toString('base64url');
  const env = { ...process.env, BENCH_SECRET: secret, BENCH_ACCEPT: '1' };
  const server = new Child<ServerReply>(
    `server ${kind}`,
    spawnNode('server.ts', [kind], opts.pin ? 0 : null, env),
  );
  const children: Array<{ kill(): Promise<void> }> = [];
  try {
    const ready = await server.next('ready', 30_000);
    const url = `ws://127.0.0.1:${ready.port}${ready.path}`;
    const protocol = protocolOf(kind);
    // NOTE: one process (64 handshakes in flight): two would exceed Pulse's per-address cap of
    // unauthenticated sockets (100) from 127.0.0.1. Idle sockets cost a client next to nothing.
    const processes = 1;
    const idle: Array<Child<{ type: 'ready'; sockets: number; failed: number } | { type: 'error' }>> = [];
    for (let p = 0; p < processes && n > 0; p++) {
      const clientOpts: ClientOptions = {
        protocol,
        url,
        count: Math.floor(n / processes) + (p < n % processes ? 1 : 0),
        offset: p * Math.ceil(n / processes),
        workspaceId: WORKSPACE_ID,
        procedure: procedures[kind],
        secret,
      };
      const child = new Child<{ type: 'ready'; sockets: number; failed: number } | { type: 'error' }>(
        `idle ${p}`,
        spawnNode('client.ts', [JSON.stringify(clientOpts)], opts.pin ? 1 : null, env),
      );
      idle.push(child);
      children.push(child);
    }
    const readies = await Promise.all(idle.map((c) => c.next('ready', 300_000)));
    const subscribed = readies.reduce((s, r) => s + r.sockets, 0);
    log(`  ${kind} N=${n}: ${subscribed} idle subscribers`);
    if (subscribed < n) throw new Error(`only ${subscribed} of ${n} idle subscribers connected`);

    const acceptOpts: AcceptClientOptions = {
      protocol,
      url,
      m: opts.m,
      concurrency: opts.concurrency,
      offset: n,
      workspaceId: WORKSPACE_ID,
      procedure: procedures[kind],
      secret,
      sourceAddresses: 16,
    };
    const opener = new Child<AcceptClientReply>(
      'opener',
      spawnNode('accept-client.ts', [JSON.stringify(acceptOpts)], opts.pin ? 1 : null, env),
    );
    children.push(opener);
    // Something for the first snapshot to carry: a few events published (and stored, for Pulse)
    // before the window, as on a live workspace (the dashboard's snapshot then holds the value).
    for (let seq = 1; seq <= SEED_EVENTS; seq++) server.send({ cmd: 'publish', seq });
    await opener.next('primed', 120_000);
    await sleep(500);
    const stats = async () => {
      const reply = server.next('stats', 30_000);
      server.send({ cmd: 'stats', gc: false });
      return reply;
    };
    const before = await stats();
    const result = opener.next('result', 180_000);
    opener.send({ cmd: 'go' });
    const r = await result;
    const after = await stats();
    const profileDir = process.env.BENCH_PROFILE_DIR;
    if (profileDir && before.monoMicros !== undefined && after.monoMicros !== undefined) {
      // The accept window in the server's profile (same monotonic clock as its timestamps).
      writeFileSync(
        join(profileDir, `window-${kind}-${n}-${server.child.pid}.json`),
        JSON.stringify({ kind, n, pid: server.child.pid, from: before.monoMicros, to: after.monoMicros }),
      );
    }
    const times = r.times.sort((a, b) => a - b);
    return {
      kind,
      n,
      m: opts.m,
      accepted: r.accepted,
      failed: r.failed,
      acceptsPerSec: r.accepted / (r.wallMs / 1000),
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      // NOTE: includes the IPC of the two stats calls (the same for every server).
      cpuPerAccept: (after.cpuMicros - before.cpuMicros) / Math.max(1, r.accepted),
      userCpuPerAccept:
        after.userMicros !== undefined && before.userMicros !== undefined
          ? (after.userMicros - before.userMicros) / Math.max(1, r.accepted)
          : undefined,
      clientCpu: r.cpuMicros / 1000 / r.wallMs,
      reasons: r.reasons,
      firstFrameBytes: r.lastFrameBytes || undefined,
      loopP99Ms: after.loopDelay?.p99,
      loopMaxMs: after.loopDelay?.max,
      load,
    };
  } finally {
    await Promise.all([...children.map((c) => c.kill()), server.kill()]);
  }
}

export async function runAcceptBench(opts: AcceptOptions): Promise<AcceptRow[]> {
  const rows: AcceptRow[] = [];
  for (const n of opts.ns) {
    for (const kind of opts.kinds) {
      try {
        rows.push(await runAcceptScenario(kind, n, opts));
      } catch (error) {
        opts.log?.(`  ${kind} N=${n} failed: ${(error as Error).message}`);
        rows.push({ kind, n, error: (error as Error).message });
      }
    }
  }
  return rows;
}

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value)
    ? '—'
    : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A Markdown table of the rows, with each Pulse row's ratio to Socket.IO at the same N. */
export function renderAcceptMarkdown(rows: AcceptRow[]): string {
  const lines = [
    '| server | N idle | M new | accepts/s | vs Socket.IO | p50 ms | p99 ms | server CPU µs/accept (user) | loop delay p99 / max ms | opener CPU | failed | load (1 min) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    if (row.error) {
      lines.push(
        `| ${row.kind} | ${fmt(row.n)} | — | error: ${row.error.replaceAll('|', '/')} | | | | | | | | |`,
      );
      continue;
    }
    const io = rows.find((r) => r.kind === 'socketio' && r.n === row.n && !r.error);
    const ratio =
      io?.acceptsPerSec && row.acceptsPerSec && row.kind !== 'socketio'
        ? `${(row.acceptsPerSec / io.acceptsPerSec).toFixed(2)}×`
        : '';
    lines.push(
      `| ${row.kind} | ${fmt(row.n)} | ${fmt(row.m)} | ${fmt(row.acceptsPerSec)} | ${ratio} | ${fmt(row.p50Ms, 1)} | ${fmt(row.p99Ms, 1)} | ${fmt(row.cpuPerAccept)} (${fmt(row.userCpuPerAccept)}) | ${fmt(row.loopP99Ms, 1)} / ${fmt(row.loopMaxMs, 1)} | ${fmt(row.clientCpu, 2)} | ${fmt(row.failed)} | ${fmt(row.load, 2)} |`,
    );
  }
  const frames = rows.flatMap((r) =>
    r.firstFrameBytes ? [`${r.kind} N=${fmt(r.n)}: ${r.firstFrameBytes} B`] : [],
  );
  if (frames.length)
    lines.push('', `First data frame of a new Pulse subscription (snapshot / sync): ${frames.join(', ')}.`);
  const reasons = rows.flatMap((r) =>
    r.reasons?.length ? [`${r.kind} N=${r.n}: ${r.reasons.join('; ')}`] : [],
  );
  if (reasons.length) lines.push('', `First failures: ${reasons.join(' — ')}`);
  return lines.join('\n');
}

const BEGIN = '<!-- bench-accept:begin -->';
const END = '<!-- bench-accept:end -->';

/** Replaces the section between the accept markers of BENCHMARKS.md (adds it above "## Latest run"). */
export function writeAcceptSection(path: string, body: string): void {
  const section = `${BEGIN}\n${body}\n${END}`;
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const from = current.indexOf(BEGIN);
  const to = current.indexOf(END);
  let next: string;
  if (from >= 0 && to > from) next = current.slice(0, from) + section + current.slice(to + END.length);
  else {
    const at = current.indexOf('## Latest run');
    const block = `## Accept rate\n\n${section}\n\n`;
    next = at >= 0 ? current.slice(0, at) + block + current.slice(at) : `${current.trimEnd()}\n\n${block}`;
  }
  writeFileSync(path, next);
}

function canPin(): boolean {
  if (process.env.BENCH_PIN === '0' || cpus().length < 2) return false;
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const env = process.env;
  const list = (value: string | undefined, fallback: string[]) =>
    (value ?? fallback.join(','))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const opts: AcceptOptions = {
    kinds: list(env.ACCEPT_SERVERS, [
      'ws',
      'socketio',
      'pulse-dashboard',
      'pulse-notifications',
    ]) as ServerKind[],
    ns: list(env.ACCEPT_N, ['1000', '10000']).map(Number),
    m: Number(env.ACCEPT_M ?? 2000),
    concurrency: Number(env.ACCEPT_CONCURRENCY ?? 200),
    pin: canPin(),
    log: console.log,
  };
  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
  console.log(
    `Pulse accept bench: N=${opts.ns.join('/')}, M=${opts.m}, ${opts.concurrency} in flight, servers ${opts.kinds.join(', ')}; pinned: ${opts.pin}`,
  );
  const started = Date.now();
  const rows = await runAcceptBench(opts);
  const table = renderAcceptMarkdown(rows);
  console.log(`\n${table}`);
  if (env.BENCH_WRITE !== '0') {
    const out = env.BENCH_OUT ?? join(srcDir, '..', '..', 'BENCHMARKS.md');
    const header = `Run ${new Date().toISOString()}, Node ${process.versions.node}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, pinned: ${opts.pin}, load before ${loadBefore}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        ' / ',
      )}, ${((Date.now() - started) / 60_000).toFixed(1)} min; M = ${opts.m} new connections, ${opts.concurrency} handshakes in flight.`;
    writeAcceptSection(out, `${header}\n\n${table}`);
    console.log(`\nWrote ${out}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (error: Error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
