/**
 * `npm run bench:storm -w @pulse/bench`: reconnect storms (issue 21 §2). N clients subscribed to one
 * node; the node is SIGKILLed and started again on the same port (`pulse-restart`,
 * `socketio-restart`), or drained with tRPC's `reconnect` notice while a second node is up
 * (`pulse-drain`). Measured: per client, the time from its disconnect to its first event on a new
 * socket (p50 / p99 / max), the time until every client is back, the receiving node's peak CPU and
 * RSS (sampled from /proc every 100 ms), events lost and duplicated once everything drained.
 *
 * Environment (all optional): STORM_N (default 10000), STORM_RATE (events/s, default 2),
 * STORM_VARIANTS=pulse-restart,pulse-drain,socketio-restart, STORM_DATABASE_URL, STORM_REDIS_URL,
 * BENCH_PIN=0, BENCH_WRITE=0 (do not touch BENCHMARKS.md), BENCH_OUT (path).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnStormNode, StormProc } from './storm-proc.js';
import {
  type ClientCommand,
  type ClientReply,
  type NodeCommand,
  type NodeReply,
  nowMs,
  type PublisherCommand,
  type PublisherReply,
  type StormClientOptions,
  type StormNodeOptions,
  type StormPublisherOptions,
} from './storm-shared.js';

export const stormVariants = ['pulse-restart', 'pulse-drain', 'socketio-restart'] as const;
export type StormVariant = (typeof stormVariants)[number];

export interface StormOptions {
  n: number;
  variants?: readonly StormVariant[];
  /** Events per second published through the whole storm. */
  rate?: number;
  /** Pin nodes to core 0, publisher and clients to core 1. */
  pin?: boolean;
  databaseUrl?: string;
  redisUrl?: string;
  /** Publishing before the storm (ms). */
  warmMs?: number;
  /** Publishing after every client is back, before the publisher stops (ms). */
  settleMs?: number;
  /** Bound on the wait for every client to be back (ms). */
  backTimeoutMs?: number;
  /** Bound on the wait, once the publisher stopped, for every client to have every event (ms). */
  catchUpTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface StormRow {
  variant: StormVariant;
  n: number;
  connected: number;
  /** Clients that saw their socket close (or the reconnect notice). */
  disconnected: number;
  /** Clients with a first event on a new socket. */
  resumed: number;
  /** Per-client ms from disconnect to first event on a new socket. */
  resume: { p50: number; p99: number; max: number };
  /** Per-client ms from disconnect to the subscription's ack (tRPC `started`, Socket.IO CONNECT). */
  resubscribe: { p50: number; p99: number; max: number };
  /** ms from the kill / drain command to the last client's first event on a new socket. */
  allBackMs: number;
  /** Restart: ms from the kill until the new node listened. Drain: ms node A took to drain. */
  nodeMs: number;
  /** Receiving node, sampled every 100 ms from the moment it listens until the storm is over. */
  peakCpu: number;
  meanCpu: number;
  peakRssMb: number;
  /** RSS of the receiving node before the storm (drain: node B idle; restart: the new node at its first sample). */
  baseRssMb: number;
  published: number;
  /** Socket.IO: ticks with the node down (nothing emitted). */
  notPublished: number;
  lost: number;
  clientsWithLoss: number;
  duplicated: number;
  failedAttempts: number;
  /** Growth of the kernel's ListenOverflows during the storm (machine-wide: other processes count too). */
  listenOverflows: number;
  errors: number;
  seconds: number;
}

export type StormResult = StormRow | { variant: StormVariant; n: number; error: string };

type NodeProc = StormProc<NodeCommand, NodeReply>;
type ClientProc = StormProc<ClientCommand, ClientReply>;
type PublisherProc = StormProc<PublisherCommand, PublisherReply>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds and RSS bytes of a process from /proc, or null once it is gone. */
function procSample(pid: number): { cpu: number; rss: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15.
    const cpu = (Number(fields[11]) + Number(fields[12])) / clockTicks;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    return { cpu, rss };
  } catch {
    return null;
  }
}

/** The kernel's TcpExt ListenOverflows counter (machine-wide): connections dropped by full accept queues. */
function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i]!.startsWith('TcpExt:')) continue;
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      const at = names.indexOf('ListenOverflows');
      return at >= 0 ? Number(values[at]) : Number.NaN;
    }
  } catch {}
  return Number.NaN;
}

/** Samples one process every 100 ms: peak and mean CPU (cores) and peak RSS. */
class Sampler {
  private timer: ReturnType<typeof setInterval> | undefined;
  private prev: { at: number; cpu: number } | null = null;
  private first: { at: number; cpu: number } | null = null;
  private last: { at: number; cpu: number } | null = null;
  peakCpu = 0;
  peakRss = 0;
  firstRss = 0;
  start(pid: number) {
    const tick = () => {
      const s = procSample(pid);
      if (!s) return;
      const at = nowMs();
      if (this.prev)
        this.peakCpu = Math.max(this.peakCpu, (s.cpu - this.prev.cpu) / ((at - this.prev.at) / 1000));
      else {
        this.first = { at, cpu: s.cpu };
        this.firstRss = s.rss;
      }
      this.prev = { at, cpu: s.cpu };
      this.last = this.prev;
      this.peakRss = Math.max(this.peakRss, s.rss);
    };
    tick();
    this.timer = setInterval(tick, 100);
  }
  stop() {
    clearInterval(this.timer);
    const mean =
      this.first && this.last && this.last.at > this.first.at
        ? (this.last.cpu - this.first.cpu) / ((this.last.at - this.first.at) / 1000)
        : Number.NaN;
    return { peakCpu: this.peakCpu, meanCpu: mean, peakRss: this.peakRss, firstRss: this.firstRss };
  }
}

export async function runStormBench(options: StormOptions): Promise<StormResult[]> {
  const results: StormResult[] = [];
  for (const variant of options.variants ?? stormVariants) {
    try {
      results.push(await runVariant(variant, options));
    } catch (error) {
      options.log?.(`  ${variant} N=${options.n} failed: ${(error as Error).message}`);
      results.push({ variant, n: options.n, error: (error as Error).message });
    }
  }
  return results;
}

async function runVariant(variant: StormVariant, options: StormOptions): Promise<StormRow> {
  const log = options.log ?? (() => {});
  const n = options.n;
  const rate = options.rate ?? 2;
  const pin = options.pin ?? false;
  const warmMs = options.warmMs ?? 2000;
  const settleMs = options.settleMs ?? 2000;
  const backTimeoutMs = options.backTimeoutMs ?? 120_000;
  const pulse = variant.startsWith('pulse');
  const run = randomBytes(4).toString('hex');
  const workspaceId = `storm-${run}`;
  const redisPrefix = `pulse-storm-${run}:`;
  const databaseUrl = options.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  const secret = randomBytes(32).toString('base64url');
  const env = { ...process.env, BENCH_SECRET: secret };
  const nodeCore = pin ? 0 : null;
  const loadCore = pin ? 1 : null;
  const started = nowMs();

  const nodes: NodeProc[] = [];
  const clients: ClientProc[] = [];
  let publisher: PublisherProc | null = null;
  const sampler = new Sampler();
  let sioTimer: ReturnType<typeof setInterval> | undefined;
  const startNode = async (port: number, nodeId: string) => {
    const nodeOpts: StormNodeOptions = {
      kind: pulse ? 'pulse' : 'socketio',
      port,
      nodeId,
      databaseUrl,
      redisUrl,
      redisPrefix,
      workspaceId,
    };
    const proc: NodeProc = new StormProc(
      `node ${nodeId}`,
      spawnStormNode({ script: 'storm-node.ts', args: [JSON.stringify(nodeOpts)], core: nodeCore, env }),
    );
    nodes.push(proc);
    return proc;
  };
  try {
    const portA = await freePort();
    const portB = variant === 'pulse-drain' ? await freePort() : 0;
    const path = pulse ? '/trpc' : '/socket.io/';
    let nodeA = await startNode(portA, `storm-a-${run}`);
    await nodeA.next('ready', 60_000);
    let nodeB: NodeProc | null = null;
    if (portB) {
      nodeB = await startNode(portB, `storm-b-${run}`);
      await nodeB.next('ready', 60_000);
    }
    if (pulse) {
      const pubOpts: StormPublisherOptions = { databaseUrl, redisUrl, redisPrefix, workspaceId, rate };
      publisher = new StormProc(
        'publisher',
        spawnStormNode({
          script: 'storm-publisher.ts',
          args: [JSON.stringify(pubOpts)],
          core: loadCore,
          env,
        }),
      );
      await publisher.next('ready', 60_000);
    }

    const urls = [`ws://127.0.0.1:${portA}${path}`, ...(portB ? [`ws://127.0.0.1:${portB}${path}`] : [])];
    const processes = n >= 2000 ? 2 : 1;
    // Room for every seq of the run: rate × (warm + storm bound + settle + margin).
    const maxSeq = Math.ceil(rate * ((warmMs + backTimeoutMs + settleMs) / 1000 + 60));
    for (let p = 0; p < processes; p++) {
      const count = Math.floor(n / processes) + (p < n % processes ? 1 : 0);
      const clientOpts: StormClientOptions = {
        protocol: pulse ? 'trpc' : 'socketio',
        urls,
        count,
        offset: p * Math.ceil(n / processes),
        workspaceId,
        secret: pulse ? secret : undefined,
        maxSeq,
        // NOTE: @pulse/client's default open timeout (openTimeoutMs, 10 s); 0 = none (bare wsClient).
        pulseOpenTimeoutMs: Number(process.env.STORM_PULSE_OPEN_TIMEOUT_MS ?? 10_000) || undefined,
      };
      clients.push(
        new StormProc(
          `client ${p}`,
          spawnStormNode({
            script: 'storm-client.ts',
            args: [JSON.stringify(clientOpts)],
            core: loadCore,
            env,
          }),
        ),
      );
    }
    const readies = await Promise.all(clients.map((c) => c.next('ready', 240_000)));
    const connected = readies.reduce((s, r) => s + r.connected, 0);
    log(`  ${variant} N=${n}: ${connected} subscribed, ${readies.reduce((s, r) => s + r.failed, 0)} failed`);
    if (connected === 0) throw new Error('no client connected');

    // Publishing: Pulse from the publisher process (durable, stored even while a node is down);
    // Socket.IO from the runner to the current node over IPC (skipped while it is down).
    let sioSeq = 0;
    let notPublished = 0;
    const emitted: number[] = [];
    let sioNode: NodeProc | null = null;
    const onEmitted = (reply: NodeReply) => {
      if (reply.type === 'emitted') emitted.push(reply.seq);
    };
    if (publisher) publisher.send({ cmd: 'start' });
    else {
      sioNode = nodeA;
      nodeA.on(onEmitted);
      sioTimer = setInterval(() => {
        if (sioNode?.alive && sioNode.child.connected) sioNode.send({ cmd: 'publish', seq: ++sioSeq });
        else notPublished += 1;
      }, 1000 / rate);
    }
    await sleep(warmMs);

    const progress = async (last: number) => {
      const replies = await Promise.all(
        clients.map((c) => c.ask({ cmd: 'progress', last }, 'progress', 30_000)),
      );
      return {
        resumed: replies.reduce((s, r) => s + r.resumed, 0),
        complete: replies.reduce((s, r) => s + r.complete, 0),
        subscribed: replies.reduce((s, r) => s + r.subscribed, 0),
      };
    };

    for (const c of clients) c.send({ cmd: 'arm' });
    await sleep(50);
    const overflowsBefore = listenOverflows();
    const stormAt = nowMs();
    let nodeMs = 0;
    if (variant === 'pulse-drain') {
      sampler.start(nodeB!.pid!);
      const drained = nodeA.next('drained', backTimeoutMs);
      nodeA.send({ cmd: 'drain', graceMs: 30_000 });
      void drained.then(
        (r) => {
          nodeMs = r.ms;
        },
        () => {},
      );
    } else {
      // A crash-like restart: SIGKILL (no notice, no close frames), then the same node again.
      await nodeA.hardKill();
      nodeA = await startNode(portA, `storm-a2-${run}`);
      await nodeA.next('ready', 60_000);
      nodeMs = nowMs() - stormAt;
      sampler.start(nodeA.pid!);
      if (!pulse) {
        sioNode = nodeA;
        nodeA.on(onEmitted);
      }
    }

    // Every client back: its first event on a new socket (bounded).
    let state = await progress(0);
    let loggedAt = nowMs();
    while (state.resumed < connected && nowMs() - stormAt < backTimeoutMs) {
      await sleep(250);
      state = await progress(0);
      if (nowMs() - loggedAt > 5000) {
        loggedAt = nowMs();
        log(
          `  ${variant}: ${Math.round(nowMs() - stormAt)} ms: ${state.subscribed} subscribed, ${state.resumed} resumed`,
        );
      }
    }
    log(`  ${variant}: ${state.resumed}/${connected} resumed after ${Math.round(nowMs() - stormAt)} ms`);
    await sleep(settleMs);

    // Stop publishing; wait (bounded) for every client to have every event.
    let published: number[];
    if (publisher) {
      const finished = await publisher.ask({ cmd: 'finish' }, 'finished', 30_000);
      const failed = new Set(finished.failed);
      published = [];
      for (let s = 1; s <= finished.last; s++) if (!failed.has(s)) published.push(s);
      if (finished.failed.length) log(`  publisher: ${finished.failed.length} sends failed`);
      const deadline = nowMs() + (options.catchUpTimeoutMs ?? 60_000);
      let done = await progress(finished.last);
      while (done.complete < connected && nowMs() < deadline) {
        await sleep(250);
        done = await progress(finished.last);
      }
    } else {
      clearInterval(sioTimer);
      await sleep(1000);
      published = [...emitted].sort((a, b) => a - b);
    }
    const usage = sampler.stop();
    const overflows = listenOverflows() - overflowsBefore;
    const reports = await Promise.all(
      clients.map((c) => c.ask({ cmd: 'report', published }, 'report', 60_000)),
    );
    const resumeMs = reports.flatMap((r) => r.resumeMs.filter((t) => t >= 0)).sort((a, b) => a - b);
    const resubscribeMs = reports.flatMap((r) => r.resubscribeMs.filter((t) => t >= 0)).sort((a, b) => a - b);
    const lastResumeAt = Math.max(...reports.map((r) => r.lastResumeAt));
    const sum = (
      key: 'disconnected' | 'lost' | 'clientsWithLoss' | 'duplicated' | 'failedAttempts' | 'errors',
    ) => reports.reduce((s, r) => s + r[key], 0);
    const stats = (sorted: number[]) => ({
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1) ?? Number.NaN,
    });
    return {
      variant,
      n,
      connected,
      disconnected: sum('disconnected'),
      resumed: resumeMs.length,
      resume: stats(resumeMs),
      resubscribe: stats(resubscribeMs),
      allBackMs: lastResumeAt > 0 ? lastResumeAt - stormAt : Number.NaN,
      nodeMs,
      peakCpu: usage.peakCpu,
      meanCpu: usage.meanCpu,
      peakRssMb: usage.peakRss / 2 ** 20,
      baseRssMb: usage.firstRss / 2 ** 20,
      published: published.length,
      notPublished,
      lost: sum('lost'),
      clientsWithLoss: sum('clientsWithLoss'),
      duplicated: sum('duplicated'),
      failedAttempts: sum('failedAttempts'),
      listenOverflows: overflows,
      errors: sum('errors'),
      seconds: (nowMs() - started) / 1000,
    };
  } finally {
    clearInterval(sioTimer);
    sampler.stop();
    await Promise.all([
      ...clients.map((c) => c.kill()),
      ...(publisher ? [publisher.kill()] : []),
      ...nodes.map((p) => p.kill()),
    ]);
  }
}

const fmt = (value: number, digits = 0) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';

const labels: Record<StormVariant, string> = {
  'pulse-restart': 'Pulse, node restarted (SIGKILL)',
  'pulse-drain': 'Pulse, node A drained → B',
  'socketio-restart': 'Socket.IO, server restarted (SIGKILL)',
};

export function renderStormMarkdown(rows: readonly StormResult[]): string {
  const header = [
    'scenario',
    'N back / subscribed',
    'resume p50 ms',
    'p99 ms',
    'max ms',
    'resubscribe p50 / p99 ms',
    'all back ms',
    'node down / drain ms',
    'peak CPU (cores)',
    'mean CPU',
    'peak RSS MB (before)',
    'events published',
    'lost (clients)',
    'duplicated',
    'failed attempts',
    'listen overflows',
  ];
  const lines = [
    `| ${header.join(' | ')} |`,
    `| --- | ${header
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ];
  for (const row of rows) {
    if ('error' in row) {
      lines.push(
        `| ${labels[row.variant]} | error: ${row.error.split('\n')[0]?.slice(0, 100)} |${' |'.repeat(header.length - 2)}`,
      );
      continue;
    }
    lines.push(
      `| ${[
        labels[row.variant],
        `${fmt(row.resumed)} / ${fmt(row.connected)}`,
        fmt(row.resume.p50),
        fmt(row.resume.p99),
        fmt(row.resume.max),
        `${fmt(row.resubscribe.p50)} / ${fmt(row.resubscribe.p99)}`,
        fmt(row.allBackMs),
        fmt(row.nodeMs),
        fmt(row.peakCpu, 2),
        fmt(row.meanCpu, 2),
        `${fmt(row.peakRssMb)} (${fmt(row.baseRssMb)})`,
        `${fmt(row.published)}${row.notPublished ? ` (+${fmt(row.notPublished)} while down)` : ''}`,
        `${fmt(row.lost)} (${fmt(row.clientsWithLoss)})`,
        fmt(row.duplicated),
        fmt(row.failedAttempts),
        fmt(row.listenOverflows),
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
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
  const n = Number(env.STORM_N ?? 10_000);
  const rate = Number(env.STORM_RATE ?? 2);
  const variants = (
    env.STORM_VARIANTS ? env.STORM_VARIANTS.split(',').map((s) => s.trim()) : [...stormVariants]
  ) as StormVariant[];
  for (const v of variants) if (!stormVariants.includes(v)) throw new Error(`Unknown storm variant "${v}"`);
  const pin = canPin();
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ');
  const loadBefore = load();
  const started = Date.now();
  console.log(
    `Pulse reconnect-storm bench: N=${n}, ${rate} events/s, ${variants.join(', ')}; pinned: ${pin}`,
  );
  const rows = await runStormBench({
    n,
    rate,
    variants,
    pin,
    databaseUrl: env.STORM_DATABASE_URL,
    redisUrl: env.STORM_REDIS_URL,
    log: console.log,
  });
  const table = renderStormMarkdown(rows);
  console.log(table);
  if (env.BENCH_WRITE !== '0') {
    const out = env.BENCH_OUT ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'BENCHMARKS.md');
    const meta = `Run ${new Date().toISOString()} · ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB · Node ${process.versions.node} · N = ${n.toLocaleString('en-US')}, ${rate} events/s · pinned: ${pin} · Load average (1/5/15 min) before: ${loadBefore}; after: ${load()} · ${Math.round((Date.now() - started) / 1000)} s`;
    const begin =
      '<!-- bench-storm:begin (generated by `npm run bench:storm`; edits inside are overwritten) -->';
    const end = '<!-- bench-storm:end -->';
    const section = `${begin}\n${meta}\n\n${table}\n${end}`;
    const current = existsSync(out) ? readFileSync(out, 'utf8') : '# Benchmarks\n';
    const from = current.indexOf('<!-- bench-storm:begin');
    const to = current.indexOf(end);
    let next: string;
    if (from >= 0 && to > from) next = current.slice(0, from) + section + current.slice(to + end.length);
    else {
      const latest = current.indexOf('## Latest run');
      const block = `## Reconnect storms\n\n${section}\n\n`;
      next =
        latest >= 0
          ? current.slice(0, latest) + block + current.slice(latest)
          : `${current.trimEnd()}\n\n${block}`;
    }
    writeFileSync(out, next);
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
