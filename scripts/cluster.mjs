#!/usr/bin/env node
// `npm run cluster`: three Pulse nodes on consecutive ports (3001–3003) sharing the local Redis and
// PostgreSQL, in demo mode with ONE secret, so a token works on every node. Try it: open a client
// on :3001 and another on :3003 and watch presence and notifications cross.
// Flags: --nodes N (default 3), --port P (first port, default 3001).
// Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/pulse_cluster, created if missing),
//      REDIS_URL (default redis://127.0.0.1:6379), PULSE_REDIS_PREFIX (default pulse-cluster:),
//      PULSE_JWT_SECRET (default: a fresh random one shared by the nodes).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '3' }, port: { type: 'string', default: '3001' } },
});
const count = Number(values.nodes);
const firstPort = Number(values.port);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/pulse_cluster';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = process.env.PULSE_REDIS_PREFIX ?? 'pulse-cluster:';
const secret = process.env.PULSE_JWT_SECRET ?? randomBytes(32).toString('base64url');

// The nodes run migrations themselves; the database itself must exist.
const require = createRequire(join(root, 'packages/server/package.json'));
const pg = require('pg');
async function ensureDatabase(url) {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(`create database "${name.replaceAll('"', '""')}"`);
      console.log(`▸ created database ${name}`);
    }
  } finally {
    await client.end();
  }
}
try {
  await ensureDatabase(databaseUrl);
} catch (error) {
  console.error(`PostgreSQL at ${databaseUrl} is not usable: ${error.message}`);
  process.exit(1);
}

const children = [];
let stopping = false;
const stopAll = (signal) => {
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill(signal);
};
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll(signal));

const ports = Array.from({ length: count }, (_, i) => firstPort + i);
for (const [i, port] of ports.entries()) {
  const nodeId = `node-${i + 1}`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=source', join(root, 'packages/server/src/main.ts')],
    {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(port),
        PULSE_NODE_ID: nodeId,
        PULSE_JWT_SECRET: secret,
        PULSE_DEMO: 'true',
        DATABASE_URL: databaseUrl,
        REDIS_URL: redisUrl,
        PULSE_REDIS_PREFIX: redisPrefix,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  // Each node prints the same demo tokens: show its first line only; the tokens are printed once below.
  let first = true;
  child.stdout.on('data', (chunk) => {
    if (!first) return;
    first = false;
    process.stdout.write(`[${nodeId}] ${chunk.toString().split('\n')[0]}\n`);
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${nodeId}] exited (${signal ?? code}); stopping the cluster`);
      stopAll('SIGTERM');
    }
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(stopping ? 0 : 1);
  });
}

// Wait for every node, then print the shared tokens once.
const deadline = Date.now() + 60_000;
for (const port of ports) {
  for (;;) {
    if (stopping) break;
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      console.error(`node on port ${port} is not ready after 60 s`);
      stopAll('SIGTERM');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
if (!stopping) {
  const { users } = await (await fetch(`http://127.0.0.1:${ports[0]}/demo/tokens`)).json();
  console.log(
    `\n▸ ${count} Pulse nodes on Redis (${redisUrl}, prefix ${redisPrefix}) and PostgreSQL (${databaseUrl})`,
  );
  for (const port of ports) console.log(`    http://127.0.0.1:${port}    ws://127.0.0.1:${port}/trpc`);
  console.log('\n  DEMO MODE, one secret shared by every node: each token below works on any of them.\n');
  for (const u of users) {
    const ws =
      Object.entries(u.workspaces)
        .map(([w, r]) => `${w}:${r}`)
        .join(',') || (u.service ? 'service' : '-');
    console.log(`  ${u.sub.padEnd(13)} ${ws.padEnd(28)} ${u.token}`);
  }
  const alice = users[0].token;
  console.log(
    `\n  try: curl -H "Authorization: Bearer ${alice}" 'http://127.0.0.1:${ports.at(-1)}/trpc/presence.list?input=${encodeURIComponent(JSON.stringify({ workspaceId: 'acme' }))}'`,
  );
  console.log('\n  Ctrl-C stops every node.');
}
