/**
 * Durable writes: Pulse's `notifications.send` (stored, then published) against the bare driver
 * writing the same rows into the same tables, on SQLite and PostgreSQL, one send at a time and 50
 * in flight (distinct recipients), with the stream kernel's group commit off (`pulse`) and on
 * (`pulse+group`, the default since issue 18 item 4). Every measurement runs in its own
 * process (durable-worker.ts), pinned to core 0 when it can be (PostgreSQL's server then has the
 * other core). `npm run bench:durable -w @pulse/bench`; also part of `npm run bench`.
 *
 * The same for `inbox.receive` (an inbound platform message; message i goes to conversation ⌊i/4⌋,
 * see durable-worker.ts) beside the bare driver running the statements a receive runs.
 *
 * Environment: DURABLE_OPS=send,receive (which writes), DURABLE_SENDS (per measurement, default
 * 4000 on SQLite, 1500 on PostgreSQL), DURABLE_ENGINES=sqlite,postgres, DURABLE_CONCURRENCY=1,50, DATABASE_BENCH_URL (default
 * postgres://postgres@127.0.0.1:5432/pulse_bench, created when missing), BENCH_PIN=0. Run alone it
 * prints its tables; `npm run bench` writes them into BENCHMARKS.md with the rest of the run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DurableWorkerOptions, DurableWorkerResult } from './durable-worker.js';

const here = dirname(fileURLToPath(import.meta.url));

/** A Node line to run on: its binary and a tree (repo root) whose node_modules were built for it. */
export interface NodeLine {
  label: string;
  node: string;
  root: string;
}

export const hostLine: NodeLine = {
  label: `Node ${process.versions.node}`,
  node: process.execPath,
  root: join(here, '..', '..'),
};

export type DurableOp = 'send' | 'receive';

export interface DurableRow {
  /** `notifications.send` or `inbox.receive`. */
  op: DurableOp;
  line: string;
  engine: 'sqlite' | 'postgres';
  impl: 'bare' | 'pulse' | 'pulse+group';
  concurrency: number;
  result?: DurableWorkerResult;
  error?: string;
}

export interface DurableOptions {
  ops?: DurableOp[];
  lines?: NodeLine[];
  engines?: Array<'sqlite' | 'postgres'>;
  concurrency?: number[];
  sends?: { sqlite: number; postgres: number };
  databaseUrl?: string;
  pin?: boolean;
  log?: (line: string) => void;
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

/** Creates the bench database when it is missing; returns an error text when PostgreSQL is unreachable. */
async function ensureDatabase(url: string): Promise<string | null> {
  const { default: pg } = await import('pg');
  const target = new URL(url);
  const name = target.pathname.slice(1);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rows.length === 0) await client.query(`create database "${name.replaceAll('"', '')}"`);
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

function runWorker(line: NodeLine, o: DurableWorkerOptions, pin: boolean, groupCommit: boolean) {
  return new Promise<DurableWorkerResult>((resolve, reject) => {
    const args = [
      '--import',
      'tsx',
      '--conditions=source',
      join(line.root, 'bench/src/durable-worker.ts'),
      JSON.stringify(o),
    ];
    const command = pin ? 'taskset' : line.node;
    const argv = pin ? ['-c', '0', line.node, ...args] : args;
    const child = spawn(command, argv, {
      cwd: join(line.root, 'bench'),
      env: { ...process.env, PULSE_STREAM_GROUP_COMMIT: groupCommit ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) resolve(JSON.parse(line.slice('RESULT '.length)) as DurableWorkerResult);
      else reject(new Error(`durable worker exited (${signal ?? code}) without a result`));
    });
  });
}

export async function runDurableBench(
  opts: DurableOptions = {},
): Promise<{ rows: DurableRow[]; pgError: string | null }> {
  const env = process.env;
  const log = opts.log ?? console.log;
  const lines = opts.lines ?? [hostLine];
  const ops = opts.ops ?? (env.DURABLE_OPS?.split(',') as DurableOp[] | undefined) ?? ['send', 'receive'];
  const engines = opts.engines ??
    (env.DURABLE_ENGINES?.split(',') as Array<'sqlite' | 'postgres'> | undefined) ?? ['sqlite', 'postgres'];
  const concurrency = opts.concurrency ?? env.DURABLE_CONCURRENCY?.split(',').map(Number) ?? [1, 50];
  const fixed = env.DURABLE_SENDS ? Number(env.DURABLE_SENDS) : undefined;
  const sends = opts.sends ?? { sqlite: fixed ?? 4000, postgres: fixed ?? 1500 };
  const databaseUrl =
    opts.databaseUrl ?? env.DATABASE_BENCH_URL ?? 'postgres://postgres@127.0.0.1:5432/pulse_bench';
  const pin = opts.pin ?? canPin();
  let pgError: string | null = null;
  if (engines.includes('postgres')) {
    pgError = await ensureDatabase(databaseUrl);
    if (pgError) log(`  durable: PostgreSQL unreachable (${pgError}); its rows are left out`);
  }
  const rows: DurableRow[] = [];
  for (const op of ops) {
    for (const engine of engines) {
      if (engine === 'postgres' && pgError) continue;
      for (const c of concurrency) {
        for (const line of lines) {
          for (const impl of ['bare', 'pulse', 'pulse+group'] as const) {
            const o: DurableWorkerOptions = {
              op,
              engine,
              impl: impl === 'bare' ? 'bare' : 'pulse',
              concurrency: c,
              sends: sends[engine],
              warmup: Math.min(300, Math.ceil(sends[engine] / 5)),
              databaseUrl,
              workspaceId: `durable-${randomBytes(4).toString('hex')}`,
            };
            const row: DurableRow = { op, line: line.label, engine, impl, concurrency: c };
            try {
              row.result = await runWorker(line, o, pin, impl === 'pulse+group');
              log(
                `  durable ${op} ${line.label} ${engine} ${impl} ×${c}: ${Math.round(row.result.sendsPerSec)} ${op}s/s, ${row.result.cpuUsPerSend.toFixed(1)} µs CPU/${op}, p99 ${row.result.p99Ms.toFixed(2)} ms`,
              );
            } catch (error) {
              row.error = (error as Error).message;
              log(`  durable ${op} ${line.label} ${engine} ${impl} ×${c}: ${row.error}`);
            }
            rows.push(row);
          }
        }
      }
    }
  }
  return { rows, pgError };
}

const fmt = (n: number, digits = 1) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '—';

export function renderDurableMarkdown(
  rows: DurableRow[],
  meta: { date: string; loadBefore: string; loadAfter: string; pinned: boolean; pgError: string | null },
): string {
  const out: string[] = [];
  out.push(
    `Run ${meta.date} · ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length} · load average (1/5/15 min) before: ${meta.loadBefore}; after: ${meta.loadAfter} · worker pinned to core 0: ${meta.pinned ? 'yes' : 'no'}${meta.pgError ? ` · PostgreSQL rows left out: ${meta.pgError}` : ''}`,
  );
  const sends = rows.filter((r) => (r.op ?? 'send') === 'send');
  const receives = rows.filter((r) => r.op === 'receive');
  if (sends.length > 0) out.push('', ...renderOp(sends, 'send', 'sends'));
  if (receives.length > 0) {
    out.push('', '`inbox.receive` (message i to conversation ⌊i/4⌋; bare: the same statements by hand):', '');
    out.push(...renderOp(receives, 'receive', 'receives'));
  }
  return out.join('\n');
}

function renderOp(rows: DurableRow[], unit: string, plural: string): string[] {
  const out: string[] = [];
  out.push(
    `| line | engine | writer | in flight | ${plural}/s | CPU µs/${unit} (writer process) | p50 ms | p99 ms | max ms | errors |`,
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of rows) {
    const x = r.result;
    out.push(
      x
        ? `| ${r.line} | ${r.engine} | ${r.impl} | ${r.concurrency} | ${fmt(x.sendsPerSec, 0)} | ${fmt(x.cpuUsPerSend)} | ${fmt(x.p50Ms, 2)} | ${fmt(x.p99Ms, 2)} | ${fmt(x.maxMs, 1)} | ${x.errors} |`
        : `| ${r.line} | ${r.engine} | ${r.impl} | ${r.concurrency} | ${r.error} | | | | | |`,
    );
  }
  out.push('', 'Ratios within the run (Pulse ÷ bare driver, same line, engine and concurrency):', '');
  out.push(
    `| line | engine | in flight | writer | ${plural}/s ÷ bare | CPU/${unit} ÷ bare |`,
    '| --- | --- | ---: | --- | ---: | ---: |',
  );
  for (const r of rows) {
    if (r.impl === 'bare' || !r.result) continue;
    const bare = rows.find(
      (b) =>
        b.impl === 'bare' && b.line === r.line && b.engine === r.engine && b.concurrency === r.concurrency,
    )?.result;
    if (!bare) continue;
    out.push(
      `| ${r.line} | ${r.engine} | ${r.concurrency} | ${r.impl} | ${(r.result.sendsPerSec / bare.sendsPerSec).toFixed(2)}× | ${(r.result.cpuUsPerSend / bare.cpuUsPerSend).toFixed(2)}× |`,
    );
  }
  return out;
}

export const loadNow = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const loadBefore = loadNow();
  const pinned = canPin();
  const { rows, pgError } = await runDurableBench({ pin: pinned });
  const md = renderDurableMarkdown(rows, {
    date: new Date().toISOString(),
    loadBefore,
    loadAfter: loadNow(),
    pinned,
    pgError,
  });
  console.log(`\n${md}`);
  process.exit(0);
}
