import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalCluster {
  ports: number[];
  urls: string[];
  /** Kills master `index` (SIGKILL: its pub/sub connections drop, its keys are lost). */
  killNode(index: number): Promise<void>;
  /** Starts master `index` again on its port with its nodes.conf: it rejoins owning the same slots. */
  restartNode(index: number): Promise<void>;
  /** The index of the master that owns `key`'s slot (a channel name works too). */
  nodeOf(key: string): number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function cli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

/** Starts a Redis Cluster of `masters` masters (no replicas; three by default) on free loopback ports in a temp dir. */
export async function startLocalCluster(masters = 3): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await freePort());
  const spawnNode = (port: number): ChildProcess =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        // Without it a lone master reports an empty IP in CLUSTER SLOTS (it never met a peer).
        '--cluster-announce-ip',
        '127.0.0.1',
        // A master a test kills must not be marked failed (no replicas: the whole cluster would stop).
        '--cluster-node-timeout',
        '60000',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
  const procs: ChildProcess[] = ports.map(spawnNode);
  const answering = async (port: number) => {
    for (let i = 0; ; i++) {
      try {
        if (cli(port, 'ping').trim() === 'PONG') break;
      } catch {
        if (i > 200) throw new Error(`redis-server on ${port} did not start`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  for (const port of ports) await answering(port);
  if (masters >= 3) {
    execFileSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'ignore' },
    );
  } else {
    // `--cluster create` wants three masters at least: fewer get their slots split by hand.
    const per = Math.ceil(16384 / masters);
    for (const [i, port] of ports.entries()) {
      cli(port, 'cluster', 'addslotsrange', String(i * per), String(Math.min(16383, (i + 1) * per - 1)));
      if (i > 0) cli(port, 'cluster', 'meet', '127.0.0.1', String(ports[0]));
    }
  }
  const clusterOk = async () => {
    for (let i = 0; ; i++) {
      if (ports.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok'))) break;
      if (i > 400) throw new Error('cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await clusterOk();
  const exited = (p: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  return {
    ports,
    urls: ports.map((p) => `redis://127.0.0.1:${p}`),
    async killNode(index) {
      await exited(procs[index]!);
    },
    async restartNode(index) {
      procs[index] = spawnNode(ports[index]!);
      await answering(ports[index]!);
      await clusterOk();
    },
    nodeOf(key) {
      const slot = Number(cli(ports[0]!, 'cluster', 'keyslot', key).trim());
      const index = ports.findIndex((port) => ownsSlot(port, slot));
      if (index >= 0) return index;
      throw new Error(`no master owns slot ${slot}`);
    },
    async stop() {
      await Promise.all(procs.map(exited));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PUBSUB SHARDNUMSUB of one channel on one node. */
export function shardNumSub(port: number, channel: string): number {
  const out = cli(port, 'pubsub', 'shardnumsub', channel).trim().split('\n');
  return Number(out[1] ?? 0);
}

/** Whether the master on `port` owns `slot` (CLUSTER SHARDS would do on Redis >= 7.0.4; NODES is older). */
function ownsSlot(port: number, slot: number): boolean {
  const myself = cli(port, 'cluster', 'nodes')
    .split('\n')
    .find((line) => line.includes('myself'));
  if (!myself) return false;
  for (const range of myself.trim().split(' ').slice(8)) {
    if (range.startsWith('[')) continue;
    const [from, to] = range.split('-').map(Number) as [number, number | undefined];
    if (slot >= from && slot <= (to ?? from)) return true;
  }
  return false;
}
