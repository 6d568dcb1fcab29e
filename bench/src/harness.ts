/**
 * Runs one scenario: one server process and its load clients, then idle memory, latency of single
 * broadcasts and sustained throughput. Every process it starts is killed before it returns.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientOptions } from './client.js';
import {
  BENCH_POST_ID,
  type ClientCommand,
  type ClientReply,
  nowMs,
  protocolOf,
  type ServerCommand,
  type ServerKind,
  type ServerReply,
  WORKSPACE_ID,
} from './shared.js';

const srcDir = dirname(fileURLToPath(import.meta.url));

export interface ScenarioOptions {
  kind: ServerKind;
  /** Subscribers. */
  n: number;
  /** Single broadcasts to an idle server for the latency figures. */
  latencyRounds: number;
  /** Idle time between two latency rounds. */
  gapMs: number;
  /** Length of the sustained-throughput window. */
  throughputMs: number;
  /** Offered load of the paced window that measures CPU per delivery, deliveries per second. */
  pacedRate: number;
  /** Length of the paced window. */
  pacedMs: number;
  /** Events in flight during the throughput window (bounded: no queue grows without limit). */
  window: number;
  /** Pin the server to core 0 and the clients to core 1 (`taskset`). */
  pin: boolean;
  /**
   * Load client processes. Default: 1 below N = 2,000, 2 up to N = 20,000, past that one per
   * 10,000 sockets (each on its own loopback source address, see `sourceAddresses`).
   */
  clientProcesses?: number;
  /**
   * Give load client p the source address 127.0.0.(2 + p): one source address has ~28,000
   * ephemeral ports towards one server port. Default: on past N = 20,000.
   */
  sourceAddresses?: boolean;
  /**
   * Cap the server process's descriptors below the hard limit (`ulimit -n`): the smoke test's
   * stand-in for a node that runs out of descriptors, as 50,000 sockets do under a 20,000 limit.
   */
  serverDescriptors?: number;
  /**
   * Run the server from another tree and/or Node binary (a baseline checkout, another Node line);
   * the load clients stay on this tree and Node, so both sides of a comparison meet the same load.
   */
  tree?: ServerTree;
  log?: (line: string) => void;
}

/** Where a server process comes from: a repo root (its own node_modules) and the node that runs it. */
export interface ServerTree {
  /** Shown beside the server kind in the tables: `pulse-dashboard@20d925d`, `ws@node26`. */
  label: string;
  root: string;
  node: string;
  /** Extra environment of the server process (an A/B switch on the same tree). */
  env?: Record<string, string>;
}

export interface ScenarioResult {
  kind: ServerKind;
  /** The tree's label when the server ran from another tree (see `ScenarioOptions.tree`). */
  label?: string;
  n: number;
  subscribed: number;
  failed: number;
  /** Server RSS growth per idle subscribed connection, bytes. */
  rssPerSubscriber: number;
  /** V8 heap growth per idle subscribed connection, bytes (part of the RSS figure). */
  heapPerSubscriber: number;
  /** Per-delivery latency of single broadcasts to an idle server, ms (max = slowest last arrival). */
  latency: { p50: number; p99: number; max: number; lastMedian: number };
  deliveriesPerSec: number;
  /** Server CPU (user + system) per delivered event at the paced load, µs. */
  cpuPerDelivery: number;
  /** Server CPU per delivered event in the saturated throughput window, µs. */
  cpuPerDeliverySaturated: number;
  /** Load-client CPU share during the throughput window (1 = one full core). */
  clientCpu: number;
  /** Events published but never received. */
  dropped: number;
  errors: number;
  closed: number;
  /** Deliveries that carried a `tracked` id (resumable streams). */
  trackedIds: number;
  published: number;
  /** The server process's soft RLIMIT_NOFILE, when it reported one. */
  fdLimit?: number;
  clientProcesses: number;
  /** Source addresses the load clients connected from. */
  sources: string[];
  /** The first failed connect's error (when any failed). */
  firstError?: string;
  /** Time until every load client had all its sockets subscribed (or given up), ms. */
  connectMs: number;
  /** Time from publish until the last subscriber had the event, one figure per latency round, ms. */
  lasts: number[];
}

class Proc<TCommand, TReply extends { type: string }> {
  private readonly listeners = new Set<(reply: TReply) => void>();
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (reply: TReply) => {
      if (reply.type === 'error') console.error(`[${name}] ${(reply as { message?: string }).message}`);
      for (const listener of this.listeners) listener(reply);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }
  send(command: TCommand) {
    if (this.child.connected) this.child.send(command as object);
  }
  on(listener: (reply: TReply) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  next<T extends TReply['type']>(type: T, timeoutMs: number): Promise<Extract<TReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => {
        clearTimeout(timer);
        off();
        reject(new Error(`${this.name} exited while waiting for "${type}"`));
      };
      this.child.once('exit', onExit);
      const off = this.on((reply) => {
        if (reply.type === 'error' && type !== 'error') {
          clearTimeout(timer);
          off();
          this.child.off('exit', onExit);
          reject(new Error(`${this.name}: ${(reply as { message?: string }).message}`));
          return;
        }
        if (reply.type !== type) return;
        clearTimeout(timer);
        off();
        this.child.off('exit', onExit);
        resolve(reply as Extract<TReply, { type: T }>);
      });
    });
  }
  async kill() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ cmd: 'stop' } as TCommand);
    // NOTE: a --cpu-prof profile (BENCH_PROFILE_DIR) is written at exit; a long run's takes seconds.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), process.env.BENCH_PROFILE_DIR ? 60_000 : 4000);
    await this.exited;
    clearTimeout(timer);
  }
}

type ServerProc = Proc<ServerCommand, ServerReply>;
type ClientProc = Proc<ClientCommand, ClientReply>;

function spawnNode(opts: {
  script: string;
  args: string[];
  core: number | null;
  env: NodeJS.ProcessEnv;
  tree?: ServerTree;
  /** Descriptors to ask for: raised to it when permitted (CAP_SYS_RESOURCE), else the hard limit. */
  descriptors?: number;
  /** Exactly this many descriptors (lowered with `ulimit -n`), instead of `descriptors`. */
  cap?: number;
}) {
  const profile = opts.script === 'server.ts' && process.env.BENCH_PROFILE_DIR;
  const dir = opts.tree ? join(opts.tree.root, 'bench', 'src') : srcDir;
  const node = [
    opts.tree?.node ?? process.execPath,
    '--expose-gc',
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
    '--import',
    'tsx',
    // BENCH_BUILD=dist: Pulse's packages from their builds (`npm run build` first), as apps run them;
    // from source, tsx's keepNames gives every closure a `name` dictionary (≈0.2–0.4 KB per closure
    // that lives with a socket), so source runs overstate per-subscriber memory.
    ...(process.env.BENCH_BUILD === 'dist' ? [] : ['--conditions=source']),
    join(dir, opts.script),
    ...opts.args,
  ];
  const command = opts.core === null ? node : ['taskset', '-c', String(opts.core), ...node];
  // NOTE: 10,000 sockets need more descriptors than the usual soft limit; raise it to the hard limit,
  // or past it to `descriptors` where the process may (CAP_SYS_RESOURCE; the server reports what it got).
  const want = opts.cap
    ? `ulimit -n ${Math.floor(opts.cap)} && exec "$@"; `
    : opts.descriptors
      ? `{ [ ${Math.ceil(opts.descriptors)} -gt "$(ulimit -Hn)" ] 2>/dev/null && ulimit -n ${Math.ceil(opts.descriptors)} 2>/dev/null; } || `
      : '';
  return spawn(
    '/bin/sh',
    ['-c', `${want}ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`, 'sh', ...command],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: opts.env,
      cwd: join(dir, '..'),
    },
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const procedures: Partial<Record<ServerKind, string>> = {
  'pulse-presence': 'presence.onChange',
  'pulse-dashboard': 'dashboard.onUpdate',
  'pulse-notifications': 'notifications.onNotification',
  'pulse-channel': 'channels.bench.subscribe',
};

export async function runScenario(opts: ScenarioOptions): Promise<ScenarioResult> {
  const log = opts.log ?? (() => {});
  const secret = randomBytes(32).toString('base64url');
  const env = { ...process.env, BENCH_SECRET: secret };
  const server: ServerProc = new Proc(
    `server ${opts.kind}${opts.tree ? `@${opts.tree.label}` : ''}`,
    spawnNode({
      script: 'server.ts',
      args: [opts.kind],
      core: opts.pin ? 0 : null,
      env: { ...env, ...opts.tree?.env },
      tree: opts.tree,
      descriptors: opts.n + 4096,
      ...(opts.serverDescriptors ? { cap: opts.serverDescriptors } : {}),
    }),
  );
  const clients: ClientProc[] = [];
  try {
    const ready = await server.next('ready', 30_000);
    const stats = async (gc: boolean) => {
      const reply = server.next('stats', 30_000);
      server.send({ cmd: 'stats', gc });
      return reply;
    };
    const base = await stats(true);

    if (ready.fdLimit !== undefined && ready.fdLimit < opts.n + 64)
      log(
        `  ${opts.kind} N=${opts.n}: the server may hold at most ${ready.fdLimit} descriptors (RLIMIT_NOFILE; raising it needs CAP_SYS_RESOURCE): connects past it fail and are counted`,
      );
    const processes =
      opts.clientProcesses ?? (opts.n > 20_000 ? Math.ceil(opts.n / 10_000) : opts.n >= 2000 ? 2 : 1);
    const spread = opts.sourceAddresses ?? opts.n > 20_000;
    const sources: string[] = [];
    const url = `ws://127.0.0.1:${ready.port}${ready.path}`;
    const connectStart = nowMs();
    for (let p = 0; p < processes; p++) {
      const localAddress = spread ? `127.0.0.${2 + p}` : undefined;
      sources.push(localAddress ?? '127.0.0.1');
      const count = Math.floor(opts.n / processes) + (p < opts.n % processes ? 1 : 0);
      const clientOpts: ClientOptions = {
        protocol: protocolOf(opts.kind),
        url,
        count,
        offset: p * Math.ceil(opts.n / processes),
        workspaceId: WORKSPACE_ID,
        procedure: procedures[opts.kind],
        procedureInput: opts.kind === 'pulse-channel' ? { input: { postId: BENCH_POST_ID } } : undefined,
        secret,
        deflate: opts.kind === 'ws-deflate',
        ...(localAddress ? { localAddress } : {}),
      };
      clients.push(
        new Proc(
          `client ${p}`,
          spawnNode({
            script: 'client.ts',
            args: [JSON.stringify(clientOpts)],
            core: opts.pin ? 1 : null,
            env,
            descriptors: count + 1024,
          }),
        ),
      );
    }
    // Bounded: 3 minutes, plus 6 ms a socket past that (50,000 tRPC sockets sign 50,000 tokens first).
    const readies = await Promise.all(clients.map((c) => c.next('ready', 180_000 + 6 * opts.n)));
    const connectMs = nowMs() - connectStart;
    const subscribed = readies.reduce((sum, r) => sum + r.sockets, 0);
    const failed = readies.reduce((sum, r) => sum + r.failed, 0);
    const firstError = readies.find((r) => r.firstError)?.firstError;
    log(
      `  ${opts.kind} N=${opts.n}: ${subscribed} subscribed, ${failed} failed${firstError ? ` (first: ${firstError})` : ''}, ${(connectMs / 1000).toFixed(1)} s`,
    );
    if (subscribed === 0) throw new Error('no subscriber connected');
    await sleep(500);
    const idle = await stats(true);
    const rssPerSubscriber = (idle.rss - base.rss) / subscribed;
    if (process.env.BENCH_HEAP_SNAPSHOT) {
      const snapshot = server.next('heapSnapshot', 120_000);
      server.send({ cmd: 'heapSnapshot', path: process.env.BENCH_HEAP_SNAPSHOT });
      log(`  heap snapshot: ${(await snapshot).path}`);
    }

    // Completion of each event across all client processes.
    const doneBy = new Map<number, { clients: number; times: number[] }>();
    const waiters = new Map<number, () => void>();
    for (const client of clients) {
      client.on((reply) => {
        if (reply.type !== 'done') return;
        let entry = doneBy.get(reply.seq);
        if (!entry) {
          entry = { clients: 0, times: [] };
          doneBy.set(reply.seq, entry);
        }
        entry.clients += 1;
        if (reply.times) for (const t of reply.times) entry.times.push(t);
        if (entry.clients === clients.length) waiters.get(reply.seq)?.();
      });
    }
    let seq = 0;
    let published = 0;
    const publish = (): { seq: number; sentAt: number; done: Promise<boolean> } => {
      seq += 1;
      published += 1;
      const current = seq;
      const done = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(current);
          resolve(false);
        }, 15_000);
        waiters.set(current, () => {
          clearTimeout(timer);
          waiters.delete(current);
          resolve(true);
        });
      });
      const sentAt = nowMs();
      server.send({ cmd: 'publish', seq: current });
      return { seq: current, sentAt, done };
    };

    // Latency: single broadcasts to an idle server, after one unrecorded warm-up broadcast (the same
    // for every server: it pays for lazy compilation and first-use allocations).
    const warmUp = publish();
    await warmUp.done;
    doneBy.delete(warmUp.seq);
    await sleep(opts.gapMs);
    for (const c of clients) c.send({ cmd: 'record', on: true });
    const latencies: number[] = [];
    const lasts: number[] = [];
    for (let round = 0; round < opts.latencyRounds; round++) {
      const event = publish();
      const complete = await event.done;
      let last = 0;
      for (const t of doneBy.get(event.seq)?.times ?? []) {
        latencies.push(t - event.sentAt);
        last = Math.max(last, t - event.sentAt);
      }
      // An event some subscriber never had (15 s) has no last arrival: it shows as n/a, not as the partial max.
      lasts.push(complete ? last : Number.POSITIVE_INFINITY);
      doneBy.delete(event.seq);
      await sleep(opts.gapMs);
    }
    for (const c of clients) c.send({ cmd: 'record', on: false });
    latencies.sort((a, b) => a - b);
    const lastsInOrder = [...lasts];
    lasts.sort((a, b) => a - b);

    // Sustained throughput: keep `window` events in flight for `throughputMs`.
    const counts = async () => {
      const replies = await Promise.all(
        clients.map((c) => {
          const reply = c.next('counts', 30_000);
          c.send({ cmd: 'counts' });
          return reply;
        }),
      );
      return {
        received: replies.reduce((s, r) => s + r.received, 0),
        cpu: replies.reduce((s, r) => s + r.cpuMicros, 0),
        errors: replies.reduce((s, r) => s + r.errors, 0),
        closed: replies.reduce((s, r) => s + r.closed, 0),
        trackedIds: replies.reduce((s, r) => s + r.trackedIds, 0),
      };
    };
    // CPU per delivery at the same offered load for every server, below every server's capacity:
    // a saturated window also measures how much each one's writes get coalesced under
    // backpressure, which depends on the load generator.
    const pacedEventsPerSec = Math.max(1, opts.pacedRate / subscribed);
    const pacedBefore = await counts();
    const pacedCpuBefore = await stats(false);
    const pacedStart = nowMs();
    const paced: Array<Promise<boolean>> = [];
    for (let k = 0; nowMs() - pacedStart < opts.pacedMs; k++) {
      const due = pacedStart + (k * 1000) / pacedEventsPerSec;
      if (due > nowMs()) await sleep(due - nowMs());
      paced.push(publish().done);
    }
    await Promise.all(paced);
    const pacedAfter = await counts();
    const pacedCpuAfter = await stats(false);
    doneBy.clear();

    const before = await counts();
    const cpuBefore = await stats(false);
    const startedAt = nowMs();
    const inFlight = new Set<Promise<boolean>>();
    let endCounts: Awaited<ReturnType<typeof counts>> | null = null;
    let endCpu = 0;
    let endedAt = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        if (nowMs() - startedAt >= opts.throughputMs) {
          void Promise.all([counts(), stats(false)]).then(([c, s]) => {
            endedAt = nowMs();
            endCounts = c;
            endCpu = s.cpuMicros;
            resolve();
          });
          return;
        }
        while (inFlight.size < opts.window) {
          const { seq: current, done } = publish();
          inFlight.add(done);
          void done.then(() => {
            inFlight.delete(done);
            // Only this event's entry: others in flight may be half counted.
            doneBy.delete(current);
            pump();
          });
        }
      };
      pump();
    });
    await Promise.all(inFlight);
    await sleep(300);
    const after = await counts();
    const end = endCounts as unknown as Awaited<ReturnType<typeof counts>>;
    const deliveries = end.received - before.received;
    const seconds = (endedAt - startedAt) / 1000;
    const expected = published * subscribed;
    return {
      kind: opts.kind,
      ...(opts.tree ? { label: opts.tree.label } : {}),
      n: opts.n,
      subscribed,
      failed,
      rssPerSubscriber,
      heapPerSubscriber: (idle.heapUsed - base.heapUsed) / subscribed,
      latency: {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? NaN,
        lastMedian: percentile(lasts, 50),
      },
      deliveriesPerSec: deliveries / seconds,
      cpuPerDelivery:
        (pacedCpuAfter.cpuMicros - pacedCpuBefore.cpuMicros) / (pacedAfter.received - pacedBefore.received),
      cpuPerDeliverySaturated: (endCpu - cpuBefore.cpuMicros) / deliveries,
      clientCpu: (end.cpu - before.cpu) / 1e6 / seconds,
      dropped: Math.max(0, expected - after.received),
      errors: after.errors,
      closed: after.closed,
      trackedIds: after.trackedIds,
      published,
      ...(ready.fdLimit !== undefined ? { fdLimit: ready.fdLimit } : {}),
      clientProcesses: processes,
      sources,
      ...(firstError ? { firstError } : {}),
      connectMs,
      lasts: lastsInOrder,
    };
  } finally {
    await Promise.all([...clients.map((c) => c.kill()), server.kill()]);
  }
}
