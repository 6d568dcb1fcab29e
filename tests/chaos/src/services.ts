import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '@pulse/server/testing';
import pg from 'pg';

const run = promisify(execFile);
const PG_BIN = process.env.PULSE_CHAOS_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Runs a PostgreSQL binary as the `postgres` OS user when we are root (initdb refuses root). */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, bin);
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl restart -m immediate`: every connection dies, the server comes back on the same port. */
  restart(downMs: number): Promise<void>;
  /** Kills every other backend of the database (pg_terminate_backend). Returns how many. */
  terminateBackends(): Promise<number>;
  stop(): Promise<void>;
}

/** A throwaway PostgreSQL cluster (initdb into a temp dir, fsync off) on a free loopback port. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-chaos-pg-'));
  if (process.getuid?.() === 0) chownSync(dir, pwUid('postgres'), pwGid('postgres'));
  const data = join(dir, 'data');
  const port = (await freePorts(1))[0]!;
  const [initCmd, initArgs] = asPostgres('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '--no-sync',
  ]);
  await run(initCmd, initArgs);
  // NOTE: fsync=off survives a PostgreSQL crash (the OS keeps the writes), not a machine crash;
  // synchronous_commit stays on: an immediate restart must not lose acknowledged commits.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const ctl = async (...args: string[]) => {
    const [cmd, argv] = asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), ...args]);
    await run(cmd, argv);
  };
  await ctl('-o', opts, '-w', 'start');
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    url,
    port,
    async restart(downMs) {
      await ctl('-m', 'immediate', '-w', 'stop');
      await new Promise((r) => setTimeout(r, downMs));
      await ctl('-o', opts, '-w', 'start');
    },
    async terminateBackends() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const res = await client.query(
          'select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        );
        return Number(res.rows[0].n);
      } finally {
        await client.end();
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await ctl('-m', 'immediate', '-w', 'stop');
      } catch {
        // already down
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** uid / gid of an OS user, read from /etc/passwd (name:x:uid:gid:…). */
function idField(user: string, field: 2 | 3): number {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const parts = line.split(':');
    if (parts[0] === user) return Number(parts[field]);
  }
  throw new Error(`no OS user ${user}`);
}
const pwUid = (user: string) => idField(user, 2);
const pwGid = (user: string) => idField(user, 3);

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL, wait, start again on the same port (empty: no persistence). */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** A private `redis-server` (no persistence) on a free loopback port, restartable on that port. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = (await freePorts(1))[0]!;
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
        if (stdout.trim() === 'PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`private redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(downMs) {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    stop,
  };
}
