import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type ClusterEnv, clusterToken, freePorts, type NodeProcess, startNode } from '@pulse/server/testing';
import { CHANNEL_RETENTION, POSTS } from './channel.js';
import { type Ack, checkNotifications, readStore, type Violation } from './checker.js';
import {
  type ChannelAck,
  checkExtras,
  type DashAck,
  dashboardDiff,
  expectedOf,
  type InboxAck,
  readExtras,
} from './checker-extras.js';
import {
  connectionBurst,
  type OfficialClient,
  type RawClient,
  type Recorder,
  startOfficialClient,
  startRawClient,
} from './clients.js';
import { type FaultKind, type FaultRecord, faultKinds, formatTimeline, planFaults } from './faults.js';
import { createRng } from './prng.js';
import type { PublisherMessage, RunnerMessage, WorkerConfig, WorkspaceSpec } from './protocol.js';
import { type PresenceClient, startPresenceClient } from './presence.js';
import { startStallProxy, type StallProxy } from './proxy.js';
import {
  type PrivatePostgres,
  type PrivateRedis,
  startPrivatePostgres,
  startPrivateRedis,
} from './services.js';

export interface ChaosOptions {
  seed: number;
  /** Length of the fault phase, ms (start-up, drain and checks come on top). */
  durationMs: number;
  /** Official clients (raw bad clients and publishers come on top). */
  clients: number;
  publishers?: number;
  /** Only these fault kinds (default: all of them). */
  faults?: readonly FaultKind[];
  log?: (line: string) => void;
}

export interface ResourceSample {
  node: string;
  baselineFds: number;
  baselineRssMb: number;
  /** V8 heap in use after a full GC (heap-probe.cjs), at start-up and after every client left. */
  baselineHeapMb: number;
  finalFds: number;
  finalRssMb: number;
  finalHeapMb: number;
  /** The node's highest RSS sampled during the fault phase (this instance or an earlier one). */
  peakRssMb: number;
  /** The node's own gauges after every client left (`/metrics`): open sockets and subscriptions. */
  connections: number | null;
  subscriptions: number | null;
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  timeline: FaultRecord[];
  faultCounts: Record<FaultKind, number>;
  violations: Violation[];
  stats: {
    officialClients: number;
    rawClients: number;
    burstSockets: number;
    checkedClients: number;
    checkedEvents: number;
    publishes: number;
    duplicatePublishes: number;
    retriedPublishes: number;
    gaveUp: number;
    storedNotifications: number;
    resubscribes: number;
    presenceClients: number;
    presenceChurned: number;
    /** ms from the end of the last fault until presence matched (null: it did not). */
    presenceConvergedMs: number | null;
    rawCloseCodes: Record<string, number>;
    channelPublishes: number;
    channelClients: number;
    channelEvents: number;
    inboxMessages: number;
    inboxClients: number;
    inboxEvents: number;
    dashboardSets: number;
    dashboardClients: number;
    /** SLA clocks started, escalated (each once), answered before escalating. */
    slaPeriods: number;
    slaEscalated: number;
    slaAnswered: number;
    /** Channel publishes, inbox messages and dashboard sets that needed more than one attempt. */
    extrasRetried: number;
    /** ms from the end of the notification drain until every channel / inbox / dashboard client matched the store. */
    extrasConvergedMs: number | null;
  };
  resources: ResourceSample[];
  /** Publish-return → client-receive latency of durable notifications (see `latencyReport`). */
  latency: LatencyReport;
  /** Every node's RSS (MB) every `RSS_SAMPLE_MS` from the fault phase until the clients close, by node index. */
  rssSeries: Array<{ atMs: number; rssMb: Array<number | null> }>;
  /** Multi-line human summary (seed, timeline, first violation). */
  text: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/** How often the fault phase samples each node's RSS. */
const RSS_SAMPLE_MS = 10_000;

/** p50 / p99 / max of a set of latencies (ms), and how many. */
interface Percentiles {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * Delivery latency of durable notifications: from the moment the publisher's send returned (its
 * ack reached the runner) to the moment each official client received the event, clamped at 0 (a
 * client may see it before the ack travels back). An event is "during" a fault when its send
 * returned while one was active (from its start to 2 s after its end, the time a client needs to
 * notice and come back); `byKind` splits those by fault kind.
 */
export interface LatencyReport {
  outside: Percentiles;
  during: Percentiles;
  byKind: Partial<Record<FaultKind, Percentiles>>;
}

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { n: 0, p50: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

function latencyReport(
  official: OfficialClient[],
  ackTimes: Map<string, number>,
  phaseStart: number,
  timeline: FaultRecord[],
): LatencyReport {
  const outside: number[] = [];
  const during: number[] = [];
  const byKind = new Map<FaultKind, number[]>();
  for (const client of official) {
    for (const [i, seen] of client.seen.entries()) {
      if (seen.type !== 'notification') continue;
      const acked = ackTimes.get(`${seen.workspaceId ?? client.workspaceId}/${seen.id}`);
      const at = client.seenAt[i];
      if (acked === undefined || at === undefined) continue;
      const latency = Math.max(0, at - (phaseStart + acked));
      const active = timeline.filter((f) => acked >= f.startedAt && acked <= f.endedAt + 2_000);
      if (active.length === 0) outside.push(latency);
      else {
        during.push(latency);
        for (const kind of new Set(active.map((f) => f.kind))) {
          let list = byKind.get(kind);
          if (!list) {
            list = [];
            byKind.set(kind, list);
          }
          list.push(latency);
        }
      }
    }
  }
  return {
    outside: percentiles(outside),
    during: percentiles(during),
    byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, percentiles(v)])),
  };
}
const FD_MARGIN = 16;
const RSS_MARGIN_MB = 128;
/**
 * Heap a node may hold after the run beyond its start-up heap: caches that fill with use and stay
 * bounded (verified tokens, prepared statements, compiled code). A leak of the run's volume
 * (sockets, subscriptions, events) shows far above it.
 */
const HEAP_MARGIN_MB = 48;
const HEAP_PROBE = join(dirname(fileURLToPath(import.meta.url)), 'heap-probe.cjs');

/** Asks a node for its heap after a full GC (heap-probe.cjs); MB, or null when it did not answer in 10 s. */
async function heapMb(node: NodeProcess): Promise<number | null> {
  const from = node.output().length;
  node.child.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const m = /chaos-heap (\d+) (\d+)/.exec(node.output().slice(from));
    if (m) return Number(m[1]) / 2 ** 20;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return null;
}

/** The node's `pulse_connections` and summed `pulse_subscriptions` gauges (loopback `/metrics`). */
async function liveGauges(url: string): Promise<{ connections: number; subscriptions: number } | null> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const sum = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    return { connections: sum('pulse_connections'), subscriptions: sum('pulse_subscriptions') };
  } catch {
    return null;
  }
}
const RETENTION = 1_000_000;
/** The nodes' presence TTL (startNode's default for tests, PULSE_PRESENCE_TTL_MS). */
const PRESENCE_TTL_MS = 2_000;
/** On top of TTL + TTL/2: reconnect backoff (max 2 s) and the set's round trip. */
const PRESENCE_MARGIN_MS = 5_000;
/** The inbox's reply SLA on every node and publisher, and how often each node looks for breaches. */
const SLA_MS = 3_000;
const SLA_POLL_MS = 500;
const NODE_ENTRY = join(here, 'node-main.ts');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  _what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 100,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface Worker {
  id: string;
  child: ChildProcess;
  stopped: Promise<void>;
  exited: Promise<void>;
  send(m: RunnerMessage): void;
  output(): string;
}

function startWorker(cfg: WorkerConfig, onMessage: (m: PublisherMessage) => void): Worker {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(here, 'publisher-worker.ts')],
    {
      cwd: join(here, '..'),
      env: { ...process.env, PULSE_CHAOS_WORKER: JSON.stringify(cfg), PULSE_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  let markStopped = () => {};
  const stopped = new Promise<void>((r) => {
    markStopped = r;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', () => markStopped());
  child.on('message', (m: PublisherMessage) => {
    if (m.t === 'stopped') markStopped();
    onMessage(m);
  });
  return {
    id: cfg.workerId,
    child,
    stopped,
    exited,
    send: (m) => {
      if (child.connected) child.send(m);
    },
    output: () => output,
  };
}

/**
 * One chaos run: private PostgreSQL and Redis, three nodes, clients behind stallable proxies,
 * publisher processes, the seeded fault schedule, then a drain and the checks. Always cleans up.
 */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const rng = createRng(opts.seed);
  const cleanups: Array<() => Promise<void> | void> = [];
  const t0 = Date.now();
  const elapsed = () => `+${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        log(`cleanup: ${String(error)}`);
      }
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Private services: faults never touch the machine's shared PostgreSQL and Redis.
    const pgsql: PrivatePostgres = await startPrivatePostgres();
    cleanups.push(() => pgsql.stop());
    const redis: PrivateRedis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    const cluster: ClusterEnv = {
      databaseUrl: pgsql.url,
      redisUrl: redis.url,
      redisPrefix: `chaos${opts.seed}:`,
      env: {
        PULSE_NOTIFICATION_RETENTION: String(RETENTION),
        PULSE_AUTH_TIMEOUT_MS: '3000',
        PULSE_INBOX_SLA_MS: String(SLA_MS),
        PULSE_INBOX_SLA_POLL_MS: String(SLA_POLL_MS),
        PULSE_INBOX_RETENTION: String(CHANNEL_RETENTION),
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${HEAP_PROBE}`.trim(),
      },
    };
    log(`${elapsed()} postgres ${pgsql.url}, redis ${redis.url}`);

    // Three nodes on fixed ports (a restart comes back on the same one, behind the same proxies).
    const ports = await freePorts(3);
    const nodeIds = ports.map((_, i) => `chaos-n${i + 1}`);
    const nodes: NodeProcess[] = [];
    const stoppedNodes = new Set<number>();
    cleanups.push(async () => {
      for (const i of stoppedNodes) nodes[i]?.child.kill('SIGCONT');
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    });
    // Every process exit the runner did not cause is a violation (a crash under a fault).
    const unexpectedExits: string[] = [];
    const expectedExit = new WeakSet<ChildProcess>();
    const watch = (label: string, child: ChildProcess, output: () => string) => {
      child.once('exit', (code, signal) => {
        if (!expectedExit.has(child) && !cleaned)
          unexpectedExits.push(
            `${label} exited (code ${code}, signal ${signal}) at ${elapsed()}:\n${output().slice(-1500)}`,
          );
      });
    };
    /** How long each (re)start took to answer /readyz, ms (the report's start-up times). */
    const startMs: number[] = [];
    const restartFailures: string[] = [];
    const launch = async (i: number) => {
      const started = Date.now();
      const node = await startNode(cluster, { nodeId: nodeIds[i]!, port: ports[i]!, entry: NODE_ENTRY });
      startMs.push(Date.now() - started);
      watch(node.nodeId, node.child, node.output);
      return node;
    };
    nodes[0] = await launch(0);
    const rest = await Promise.all([1, 2].map((i) => launch(i)));
    nodes[1] = rest[0]!;
    nodes[2] = rest[1]!;
    await sleep(1_000);
    const baseline = await Promise.all(
      nodes.map(async (n) => ({
        fds: fdCount(n.child.pid!),
        rss: rssMb(n.child.pid!),
        heap: (await heapMb(n)) ?? Number.NaN,
      })),
    );
    log(
      `${elapsed()} nodes ready on ${ports.join(', ')}; baseline fds ${baseline.map((b) => b.fds).join('/')}`,
    );

    // Client groups: each group reaches the three nodes through its own three proxies.
    const groups = Math.max(2, Math.ceil(opts.clients / 25));
    const proxies: StallProxy[][] = [];
    cleanups.push(async () => {
      await Promise.all(proxies.flat().map((p) => p.close()));
    });
    for (let g = 0; g < groups; g++) proxies.push(await Promise.all(ports.map((p) => startStallProxy(p))));
    const urlsOf = (g: number) => proxies[g]!.map((p) => p.url);

    // Two workspaces; each user is a member of one; some users have two clients (two tabs).
    const userCount = Math.max(4, Math.ceil(opts.clients * 0.7));
    const workspaces: WorkspaceSpec[] = [
      { id: 'chaos-a', users: [] },
      { id: 'chaos-b', users: [] },
    ];
    const users = Array.from({ length: userCount }, (_, i) => {
      const ws = workspaces[i % 2]!;
      const user = `u${i}`;
      ws.users.push(user);
      return { user, workspaceId: ws.id };
    });
    const tokens = new Map<string, string>();
    for (const u of users)
      tokens.set(
        u.user,
        await clusterToken({ sub: u.user, name: u.user, workspaces: { [u.workspaceId]: 'member' } }),
      );

    const official: OfficialClient[] = [];
    cleanups.push(async () => {
      await Promise.all(official.map((c) => c.close().catch(() => {})));
    });
    const clientRng = rng.fork('clients');
    for (let i = 0; i < opts.clients; i++) {
      const u = users[i % userCount]!;
      // A quarter each also follow the custom channel (one post), the inbox, the dashboard.
      const kind = (['channel', 'inbox', 'dashboard', null] as const)[i % 4]!;
      official.push(
        startOfficialClient({
          extra: kind
            ? { kind, postId: kind === 'channel' ? POSTS[Math.floor(i / 4) % POSTS.length] : undefined }
            : undefined,
          label: `official-${i}`,
          user: u.user,
          workspaceId: u.workspaceId,
          token: tokens.get(u.user)!,
          urls: urlsOf(i % groups),
          rng: clientRng.fork(`c${i}`),
        }),
      );
    }
    const connected = await until(
      'clients connected',
      () => official.every((c) => c.client.getConnectionState().status === 'connected'),
      60_000,
    );
    if (!connected) throw new Error('official clients did not all connect within 60 s');
    log(`${elapsed()} ${official.length} official clients connected over ${groups} proxy groups`);

    const raw: RawClient[] = [];
    cleanups.push(async () => {
      await Promise.all(raw.map((c) => c.stop()));
    });
    const rawPerKind = Math.max(2, Math.round(opts.clients * 0.03));
    for (const kind of ['slow', 'silent', 'storm'] as const)
      for (let i = 0; i < rawPerKind; i++) {
        const u = users[clientRng.int(0, userCount - 1)]!;
        raw.push(
          startRawClient({
            kind,
            label: `raw-${kind}-${i}`,
            user: u.user,
            workspaceId: u.workspaceId,
            token: tokens.get(u.user)!,
            urls: urlsOf(clientRng.int(0, groups - 1)),
            rng: clientRng.fork(`raw-${kind}-${i}`),
          }),
        );
      }

    // Presence churn: clients online over their socket; some leave and new ones arrive all along.
    const presenceClients: PresenceClient[] = [];
    cleanups.push(async () => {
      await Promise.all(presenceClients.map((c) => c.close().catch(() => {})));
    });
    const presenceRng = rng.fork('presence');
    let presenceSerial = 0;
    let phaseStartAt = 0;
    /** Users whose presence client left: when (ms into the fault phase) and its state then. */
    const presenceLeft = new Map<string, { closedAt: number; state: string; sets: number }>();
    const presenceExtra: unknown[] = [];
    const addPresence = async () => {
      const n = presenceSerial++;
      const workspaceId = workspaces[n % 2]!.id;
      const user = `p${n}`;
      const token = await clusterToken({ sub: user, name: user, workspaces: { [workspaceId]: 'member' } });
      presenceClients.push(
        startPresenceClient({
          user,
          workspaceId,
          token,
          urls: urlsOf(n % groups),
          rng: presenceRng.fork(user),
        }),
      );
    };
    const presenceCount = Math.max(6, Math.round(opts.clients / 10));
    for (let i = 0; i < presenceCount; i++) await addPresence();
    let churning = true;
    let churned = 0;
    const churn = (async () => {
      for (let i = 0; i < 10_000 && churning; i++) {
        await sleep(presenceRng.int(1_000, 4_000));
        if (!churning) break;
        const victim = presenceClients.splice(presenceRng.int(0, presenceClients.length - 1), 1)[0];
        if (victim) {
          const state = victim.client.getConnectionState().status;
          await victim.close();
          presenceLeft.set(victim.user, {
            closedAt: Date.now() - (phaseStartAt || Date.now()),
            state,
            sets: victim.sets,
          });
        }
        await addPresence();
        churned++;
      }
    })();

    // Publisher processes.
    const acks: Ack[] = [];
    const channelAcks: ChannelAck[] = [];
    const inboxAcks: InboxAck[] = [];
    const dashAcks: DashAck[] = [];
    let retries = 0;
    let gaveUp = 0;
    const workers: Worker[] = [];
    const lastMessages: Record<string, unknown> = {};
    /** When each event's publish returned, ms from the start of the fault phase (negative: before). */
    const ackTimes = new Map<string, number>();
    cleanups.push(async () => {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
    });
    const publisherCount = opts.publishers ?? 2;
    for (let i = 0; i < publisherCount; i++) {
      const w = startWorker(
        {
          workerId: `pub${i}`,
          seed: (opts.seed * 31 + i) >>> 0,
          databaseUrl: pgsql.url,
          redisUrl: redis.url,
          redisPrefix: cluster.redisPrefix,
          retention: RETENTION,
          workspaces,
          gapMs: [20, 120],
          maxPublishes: 100_000,
          maxAttempts: 30,
          extrasGapMs: [150, 400],
          slaMs: SLA_MS,
        },
        (m) => {
          lastMessages[`pub${i}`] = { ...m, at: elapsed() };
          if (m.t === 'ack') {
            acks.push(m);
            ackTimes.set(`${m.workspaceId}/${m.eventId}`, Date.now() - (phaseStartAt || Date.now()));
          } else if (m.t === 'channel-ack') channelAcks.push(m);
          else if (m.t === 'inbox-ack') inboxAcks.push(m);
          else if (m.t === 'dash-ack') dashAcks.push(m);
          else if (m.t === 'retry') retries++;
          else if (m.t === 'gaveup') gaveUp++;
        },
      );
      watch(w.id, w.child, w.output);
      workers.push(w);
    }
    await until('publishers publishing', () => acks.length > 0, 60_000);
    log(`${elapsed()} ${workers.length} publisher processes publishing; ${raw.length} raw clients`);

    // The fault phase.
    const bursts: Recorder[] = [];
    const rawCloseCodes: Record<string, number> = {};
    const plan = planFaults(rng.fork('faults'), opts.durationMs, nodes.length, groups, opts.faults);
    const timeline: FaultRecord[] = [];
    const faultRng = rng.fork('fault-params');
    const phaseStart = Date.now();
    phaseStartAt = phaseStart;
    const rssSeries: ChaosReport['rssSeries'] = [];
    const sampleRss = () =>
      rssSeries.push({
        atMs: Date.now() - phaseStart,
        rssMb: nodes.map((n) => {
          try {
            const mb = Math.round(rssMb(n.child.pid!));
            return Number.isFinite(mb) ? mb : null; // exiting: no VmRSS line
          } catch {
            return null; // killed and not yet restarted
          }
        }),
      });
    sampleRss();
    const rssTimer = setInterval(sampleRss, RSS_SAMPLE_MS);
    rssTimer.unref();
    log(`${elapsed()} fault phase: ${plan.length} faults planned over ${opts.durationMs / 1000}s`);
    for (const f of plan) {
      const wait = phaseStart + f.at - Date.now();
      if (wait > 0) await sleep(wait);
      const startedAt = Date.now() - phaseStart;
      let note = '';
      switch (f.kind) {
        case 'node-kill': {
          expectedExit.add(nodes[f.target]!.child);
          await nodes[f.target]!.kill('SIGKILL');
          await sleep(f.durationMs);
          try {
            nodes[f.target] = await launch(f.target);
          } catch (error) {
            // A node that does not come back is a violation; the run goes on with a second start.
            restartFailures.push(
              `${nodeIds[f.target]} did not restart at ${elapsed()} (load ${readFileSync('/proc/loadavg', 'utf8').trim()}): ${String((error as Error).message).slice(0, 600)}`,
            );
            nodes[f.target] = await launch(f.target);
          }
          break;
        }
        case 'node-stop': {
          nodes[f.target]!.child.kill('SIGSTOP');
          stoppedNodes.add(f.target);
          await sleep(f.durationMs);
          nodes[f.target]!.child.kill('SIGCONT');
          stoppedNodes.delete(f.target);
          break;
        }
        case 'redis-restart':
          await redis.restart(f.durationMs);
          break;
        case 'pg-restart':
          await pgsql.restart(f.durationMs);
          break;
        case 'pg-terminate':
          note = `${await pgsql.terminateBackends()} backends terminated`;
          break;
        case 'proxy-stall': {
          for (const p of proxies[f.target]!) p.stall();
          await sleep(f.durationMs);
          for (const p of proxies[f.target]!) p.resume();
          break;
        }
        case 'conn-burst': {
          const count = Math.max(20, Math.round(opts.clients / 2));
          const r = await connectionBurst({
            count,
            urls: proxies.flatMap((g) => g.map((p) => p.url)),
            token: (i) => {
              const u = users[(i * 7) % userCount]!;
              return { token: tokens.get(u.user)!, workspaceId: u.workspaceId, user: u.user };
            },
            holdMs: f.durationMs,
            rng: faultRng,
            record: (rec) => bursts.push(rec),
          });
          note = `${count} sockets, closes ${JSON.stringify(r.closeCodes)}`;
          break;
        }
      }
      const record = { ...f, startedAt, endedAt: Date.now() - phaseStart, note };
      timeline.push(record);
      log(`${elapsed()} fault ${formatTimeline([record]).trim()}`);
    }
    const lastFaultAt = Date.now();
    sampleRss();
    churning = false;
    await churn;

    // Drain: every fault healed, publishers stop, then one barrier per workspace.
    for (const p of proxies.flat()) p.resume();
    for (const w of workers) w.send({ t: 'stop' });
    const allStopped = await Promise.race([
      Promise.all(workers.map((w) => w.stopped)).then(() => true),
      sleep(60_000).then(() => false),
    ]);
    if (!allStopped) {
      for (const w of workers) log(`publisher ${w.id} output:\n${w.output().slice(-3000)}`);
      throw new Error(`publishers did not stop within 60 s (last messages: ${JSON.stringify(lastMessages)})`);
    }
    log(`${elapsed()} publishers stopped`);
    // Presence converges on the users whose presence sockets are open (within TTL + TTL/2 + margin
    // of the end of the last fault; checked before the SLA and barrier waits, which take seconds).
    const presenceBoundMs = PRESENCE_TTL_MS + PRESENCE_TTL_MS / 2 + PRESENCE_MARGIN_MS;
    const presenceDiff: string[] = [];
    const converged = await until(
      'presence converged',
      async () => {
        presenceDiff.length = 0;
        presenceExtra.length = 0;
        for (const ws of workspaces) {
          const asker = official.find((c) => c.workspaceId === ws.id);
          if (!asker) continue;
          const want = presenceClients
            .filter((c) => c.workspaceId === ws.id)
            .map((c) => c.user)
            .sort();
          let have: string[];
          let list: Array<{ userId: string }>;
          try {
            list = await asker.client.trpc.presence.list.query({ workspaceId: ws.id });
            have = list.map((p) => p.userId).sort();
          } catch (error) {
            presenceDiff.push(`${ws.id}: presence.list failed: ${String(error)}`);
            continue;
          }
          const extra = have.filter((u) => !want.includes(u));
          for (const u of extra)
            presenceExtra.push({
              left: presenceLeft.get(u) ?? 'never opened',
              entry: list.find((p) => p.userId === u),
            });
          const missing = want.filter((u) => !have.includes(u));
          if (extra.length || missing.length)
            presenceDiff.push(`${ws.id}: extra [${extra.join(',')}], missing [${missing.join(',')}]`);
        }
        return presenceDiff.length === 0;
      },
      Math.max(0, lastFaultAt + presenceBoundMs - Date.now()),
      250,
    );
    const presenceConvergedMs = Date.now() - lastFaultAt;
    // Every clock still running escalates (and sends its alert) before the barriers: an alert is a
    // notification, and it must be in the stream the clients are checked against.
    const slaSettled = await until(
      'SLA settled',
      async () => {
        const c = new pg.Client({ connectionString: pgsql.url });
        try {
          await c.connect();
          const r = await c.query(
            'select count(*)::int as n from pulse_inbox_conversations where sla_due_at is not null and (escalated_at is null or alerted_at is null)',
          );
          return r.rows[0].n === 0;
        } catch {
          return false;
        } finally {
          await c.end().catch(() => {});
        }
      },
      SLA_MS + 30_000,
      250,
    );
    log(`${elapsed()} SLA clocks ${slaSettled ? 'settled' : 'NOT settled after 30 s'}`);
    const barrierIds = new Map<string, string>();
    for (const ws of workspaces) {
      const before = acks.length;
      const live = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null);
      if (!live) break;
      live.send({ t: 'barrier', workspaceId: ws.id });
      await until(
        'barrier ack',
        () => acks.slice(before).some((a) => a.barrier && a.workspaceId === ws.id),
        60_000,
      );
      const ack = acks.slice(before).find((a) => a.barrier && a.workspaceId === ws.id);
      if (ack) barrierIds.set(ws.id, ack.eventId);
    }
    const hasBarrier = (c: OfficialClient) => {
      const id = barrierIds.get(c.workspaceId);
      return !c.subscribed || (id !== undefined && c.seen.some((e) => e.id === id));
    };
    const drained = await until('barriers delivered', () => official.every(hasBarrier), 60_000, 200);
    log(
      `${elapsed()} drain ${drained ? 'complete' : 'INCOMPLETE after 60 s'} (${Date.now() - lastFaultAt} ms after the last fault)`,
    );
    // A last short wait: anything delivered twice or late would arrive now.
    await sleep(1_000);

    // The channel, inbox and dashboard subscribers catch up with the store (bounded: 30 s).
    const drainedAt = Date.now();
    const extrasConverged = await until(
      'extras converged',
      async () => {
        const store = await readExtras(
          pgsql.url,
          workspaces.map((w) => w.id),
        ).catch(() => null);
        if (!store) return false;
        return official.every((c) => {
          if (!c.extra?.subscribed) return true;
          if (c.extra.kind === 'dashboard') return dashboardDiff(store, c).length === 0;
          const want = expectedOf(store, c);
          return c.extra.seen.filter((e) => e.type !== 'sync').length >= want.length;
        });
      },
      30_000,
      500,
    );
    const extrasConvergedMs = extrasConverged ? Date.now() - drainedAt : null;
    await sleep(500);

    for (const c of raw) await c.stop();
    for (const c of raw)
      for (const [code, n] of Object.entries(c.closeCodes))
        rawCloseCodes[code] = (rawCloseCodes[code] ?? 0) + n;

    const store = await readStore(
      pgsql.url,
      workspaces.map((w) => w.id),
    );
    const result = checkNotifications({ store, acks, official, all: [...official, ...raw, ...bursts] });
    const extrasStore = await readExtras(
      pgsql.url,
      workspaces.map((w) => w.id),
    );
    const extras = checkExtras({
      store: extrasStore,
      official,
      channelAcks,
      inboxAcks,
      dashAcks,
      escalateBefore: Date.now() - SLA_POLL_MS - 2_000,
    });
    const violations = [...result.violations, ...extras.violations];
    if (barrierIds.size !== workspaces.length)
      violations.unshift({
        rule: 'drain',
        detail: `barrier publishes acknowledged: ${barrierIds.size} of ${workspaces.length}`,
      });
    if (!converged)
      violations.push({
        rule: 'presence',
        detail: `presence did not converge within ${presenceBoundMs} ms of the last fault: ${presenceDiff.join('; ')}`,
        history: { extra: presenceExtra, lastFaultEndedAt: lastFaultAt - phaseStartAt },
      });
    for (const exit of unexpectedExits) violations.unshift({ rule: 'crash', detail: exit });
    for (const failure of restartFailures) violations.unshift({ rule: 'restart', detail: failure });
    if (gaveUp > 0)
      violations.push({ rule: 'publish', detail: `${gaveUp} publishes gave up after 30 attempts` });

    // Resources: after every client left, each node's fds, heap and live gauges come back to its
    // baseline; RSS may stay near the peak it reached (V8 and malloc keep freed pages) but not above.
    // NOTE: RSS is sampled until here (the drain and checks are busy too): the peak a node's RSS
    // may stay at is the one it reached with its clients connected.
    clearInterval(rssTimer);
    sampleRss();
    await Promise.all(official.map((c) => c.close()));
    await Promise.all(presenceClients.map((c) => c.close().catch(() => {})));
    official.length && log(`${elapsed()} clients closed`);
    const resources: ResourceSample[] = [];
    for (const [i, n] of nodes.entries()) {
      const pid = n.child.pid!;
      const b = baseline[i]!;
      await until('fds back to baseline', () => fdCount(pid) <= b.fds + FD_MARGIN, 20_000, 250);
      let gauges = await liveGauges(n.url);
      await until(
        'no sockets or subscriptions left',
        async () => {
          gauges = await liveGauges(n.url);
          return gauges !== null && gauges.connections === 0 && gauges.subscriptions === 0;
        },
        20_000,
        250,
      );
      const finalHeap = await heapMb(n);
      let peak = 0;
      // NOTE: a sample of a process that was exiting reads no VmRSS (NaN): not a peak.
      for (const row of rssSeries) {
        const v = row.rssMb[i];
        if (typeof v === 'number' && Number.isFinite(v)) peak = Math.max(peak, v);
      }
      const sample: ResourceSample = {
        node: n.nodeId,
        baselineFds: b.fds,
        baselineRssMb: Math.round(b.rss),
        baselineHeapMb: Math.round(b.heap),
        finalFds: fdCount(pid),
        finalRssMb: Math.round(rssMb(pid)),
        finalHeapMb: finalHeap === null ? Number.NaN : Math.round(finalHeap),
        peakRssMb: peak,
        connections: gauges?.connections ?? null,
        subscriptions: gauges?.subscriptions ?? null,
      };
      resources.push(sample);
      const fail = (rule: string, detail: string) =>
        violations.push({ rule, who: n.nodeId, detail: `${n.nodeId}: ${detail}` });
      if (sample.finalFds > b.fds + FD_MARGIN)
        fail('fds', `${sample.finalFds} fds after clients left, baseline ${b.fds} (+${FD_MARGIN} allowed)`);
      if (sample.connections !== 0 || sample.subscriptions !== 0)
        fail(
          'gauges',
          `after clients left: ${sample.connections ?? '?'} connections, ${sample.subscriptions ?? '?'} subscriptions (0 expected; null = /metrics did not answer)`,
        );
      if (finalHeap === null || !Number.isFinite(b.heap))
        fail('heap', 'the heap probe did not answer (heap-probe.cjs preloaded?)');
      else if (finalHeap > b.heap + HEAP_MARGIN_MB)
        fail(
          'heap',
          `heap ${Math.round(finalHeap)} MB after clients left and a full GC, baseline ${Math.round(b.heap)} MB (+${HEAP_MARGIN_MB} allowed)`,
        );
      if (sample.finalRssMb > Math.max(b.rss + RSS_MARGIN_MB, peak))
        fail(
          'rss',
          `RSS ${sample.finalRssMb} MB after clients left: above both its baseline ${Math.round(b.rss)} MB + ${RSS_MARGIN_MB} and its fault-phase peak ${peak} MB`,
        );
    }

    const faultCounts = Object.fromEntries(
      faultKinds.map((k) => [k, timeline.filter((r) => r.kind === k).length]),
    ) as Record<FaultKind, number>;
    const stats: ChaosReport['stats'] = {
      officialClients: official.length || opts.clients,
      rawClients: raw.length,
      burstSockets: bursts.length,
      checkedClients: result.checkedClients,
      checkedEvents: result.checkedEvents,
      publishes: new Set(acks.map((a) => a.key)).size,
      duplicatePublishes: acks.filter((a) => !a.created).length,
      retriedPublishes: acks.filter((a) => a.attempts > 1).length,
      gaveUp,
      storedNotifications: store.notifications.length,
      resubscribes: official.reduce((n, c) => n + c.resubscribes, 0),
      presenceClients: presenceClients.length,
      presenceChurned: churned,
      presenceConvergedMs: converged ? presenceConvergedMs : null,
      rawCloseCodes,
      channelPublishes: new Set(channelAcks.map((a) => a.key)).size,
      channelClients: extras.checked.channelClients,
      channelEvents: extras.checked.channelEvents,
      inboxMessages: new Set(inboxAcks.map((a) => a.key)).size,
      inboxClients: extras.checked.inboxClients,
      inboxEvents: extras.checked.inboxEvents,
      dashboardSets: dashAcks.length,
      dashboardClients: extras.checked.dashboardClients,
      slaPeriods: extras.sla.periods,
      slaEscalated: extras.sla.escalated,
      slaAnswered: extras.sla.answeredInTime,
      extrasRetried: [...channelAcks, ...inboxAcks, ...dashAcks].filter((a) => a.attempts > 1).length,
      extrasConvergedMs,
    };
    const latency = latencyReport(official, ackTimes, phaseStart, timeline);
    if (process.env.CHAOS_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(
        process.env.CHAOS_DUMP,
        JSON.stringify(
          {
            timeline,
            ackTimes: Object.fromEntries(ackTimes),
            violations,
            seen: official.slice(0, 4).map((c) => c.seen.map((e) => [e.id, e.type])),
          },
          null,
          1,
        ),
      );
    }
    const text = [
      `chaos seed ${opts.seed}, fault phase ${opts.durationMs / 1000}s, ${violations.length} violation(s)`,
      'fault timeline (offsets from the start of the fault phase):',
      formatTimeline(timeline),
      `faults: ${JSON.stringify(faultCounts)}`,
      `stats: ${JSON.stringify({ ...stats, retryAttempts: retries })}`,
      `resources: ${JSON.stringify(resources)}`,
      `node start-up ms (first three, then restarts): ${startMs.join(' ')}`,
      `latency ms (send returned → client received): outside faults ${JSON.stringify(latency.outside)}; during faults ${JSON.stringify(latency.during)}`,
      ...Object.entries(latency.byKind).map(([kind, p]) => `  during ${kind}: ${JSON.stringify(p)}`),
      `rss MB per node every ${RSS_SAMPLE_MS / 1000}s: ${rssSeries.map((r) => r.rssMb.map((v) => v ?? '-').join('/')).join(' ')}`,
      ...(violations.length > 0
        ? [
            `first violation: [${violations[0]!.rule}] ${violations[0]!.detail}`,
            `history: ${JSON.stringify(violations[0]!.history ?? null)}`,
            ...violations.slice(1, 10).map((v) => `  also [${v.rule}] ${v.detail}`),
          ]
        : []),
    ].join('\n');
    return {
      seed: opts.seed,
      durationMs: opts.durationMs,
      timeline,
      faultCounts,
      violations,
      stats,
      resources,
      latency,
      rssSeries,
      text,
    };
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
