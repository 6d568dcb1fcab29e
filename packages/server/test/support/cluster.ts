import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintTestToken, TEST_SECRET } from './server.js';

/**
 * Multi-process helpers: real Pulse nodes in their own processes (the `pulse-server` CLI), a
 * private `redis-server` a test may stop and restart, free ports.
 */

// NOTE: from the monorepo's sources this module is a .ts file and runs src/main.ts through tsx;
// from the published package it is dist/testing.js (or a chunk beside it) and runs dist/main.js.
// (Paths, not `new URL(…, import.meta.url)`: Vite rewrites that pattern into an asset URL when a
// test runs in a browser-like environment such as jsdom.)
const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const mainEntry = fromSource ? join(here, '..', '..', 'src', 'main.ts') : join(here, 'main.js');
const nodeArgs = fromSource ? ['--import', 'tsx', '--conditions=source', mainEntry] : [mainEntry];
/** Where spawned nodes run: the repository root in the monorepo (as `npm run cluster`), else the cwd. */
const nodeCwd = fromSource ? join(here, '..', '..', '..', '..') : process.cwd();

/** Ports the OS reports free right now (listen on 0, read, close). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export interface ClusterEnv {
  databaseUrl: string;
  /** One Redis (`REDIS_URL`), or `redisCluster`. */
  redisUrl?: string;
  /** A Redis Cluster's startup nodes (`PULSE_REDIS_CLUSTER`) instead of `redisUrl`. */
  redisCluster?: string[];
  redisPrefix: string;
  /** Extra environment for every node (timing knobs). */
  env?: Record<string, string>;
}

/** One real Pulse node in its own process. */
export interface NodeProcess {
  nodeId: string;
  port: number;
  url: string;
  wsUrl: string;
  child: ChildProcess;
  /** Everything the process printed (diagnostics when a test fails). */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns a node (`pulse-server`, the test secret, the cluster's stores) and waits until `/readyz` answers 200. */
export async function startNode(
  cluster: ClusterEnv,
  opts: {
    nodeId: string;
    port?: number;
    env?: Record<string, string>;
    /**
     * A module to run instead of `pulse-server` (one that serves an app's router and channels from
     * the same environment); a `.ts` file runs through tsx with the `source` condition.
     */
    entry?: string;
  },
): Promise<NodeProcess> {
  const port = opts.port ?? (await freePorts(1))[0]!;
  const args = opts.entry
    ? opts.entry.endsWith('.ts')
      ? ['--import', 'tsx', '--conditions=source', opts.entry]
      : [opts.entry]
    : nodeArgs;
  const child = spawn(process.execPath, args, {
    cwd: nodeCwd,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      PULSE_JWT_SECRET: TEST_SECRET,
      DATABASE_URL: cluster.databaseUrl,
      REDIS_URL: cluster.redisUrl ?? '',
      PULSE_REDIS_CLUSTER: cluster.redisCluster?.join(',') ?? '',
      PULSE_REDIS_PREFIX: cluster.redisPrefix,
      PULSE_NODE_ID: opts.nodeId,
      PULSE_LOG_LEVEL: 'warn',
      PULSE_PRESENCE_GRACE_MS: '200',
      PULSE_PRESENCE_TTL_MS: '2000',
      PULSE_TYPING_TTL_MS: '3000',
      ...cluster.env,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit');
  const deadline = Date.now() + 30_000;
  /** What the last readiness probe got (diagnostics of a node that does not come up). */
  let lastProbe = 'no probe yet';
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${opts.nodeId} exited:\n${output}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
      lastProbe = `HTTP ${res.status} ${(await res.text()).slice(0, 300)}`;
    } catch (error) {
      // not listening yet
      const cause = (error as { cause?: { code?: string } }).cause;
      lastProbe = `no answer (${cause?.code ?? String(error)})`;
    }
    if (Date.now() > deadline) {
      const cpu = cpuSeconds(child.pid);
      child.kill('SIGKILL');
      throw new Error(
        `node ${opts.nodeId} not ready in 30 s (last /readyz: ${lastProbe}; CPU used: ${cpu}):\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    nodeId: opts.nodeId,
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}/trpc`,
    child,
    output: () => output,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** User + system CPU seconds a process used (Linux `/proc`), or 'unknown'. */
function cpuSeconds(pid: number | undefined): string {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // NOTE: utime and stime are fields 14 and 15 of stat (11 and 12 after "pid (comm) "), in clock ticks (100/s).
    return `${((Number(fields[11]) + Number(fields[12])) / 100).toFixed(2)} s`;
  } catch {
    return 'unknown';
  }
}

/** Starts `count` nodes in parallel; `await using` stops them all. */
export async function startCluster(
  cluster: ClusterEnv,
  count: number,
  env?: Record<string, string>,
): Promise<NodeProcess[] & AsyncDisposable> {
  const stamp = Math.random().toString(36).slice(2, 7);
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) => startNode(cluster, { nodeId: `n${i + 1}-${stamp}`, env })),
  );
  return Object.assign(nodes, {
    [Symbol.asyncDispose]: async () => {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    },
  });
}

/** A token valid on every node (they share the test secret). */
export const clusterToken = mintTestToken;

/** A private `redis-server` on a free port that a test may stop and restart. */
export async function startPrivateRedis(): Promise<{
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}> {
  const port = (await freePorts(1))[0]!;
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      {
        stdio: 'ignore',
      },
    );
    const { Redis } = await import('ioredis');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`private redis-server on ${port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, stop };
}
