#!/usr/bin/env node
// `npm start`: the whole demo on embedded defaults — builds the example dashboard, then starts one
// Pulse node in demo mode that serves the app, mints demo tokens and publishes demo traffic.
// Flags: --no-build (reuse examples/dashboard/dist), --no-generator (no demo traffic).
// `npm run server` still starts the server alone.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const appDir = join(root, 'examples', 'dashboard');
const distDir = join(appDir, 'dist');
const args = new Set(process.argv.slice(2));
const bin = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name);

let child = null;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true;
    if (child) child.kill(signal);
    else process.exit(130);
  });
}

function run(command, commandArgs, opts) {
  return new Promise((resolve, reject) => {
    child = spawn(command, commandArgs, { stdio: 'inherit', ...opts });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      child = null;
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

if (!args.has('--no-build') || !existsSync(join(distDir, 'index.html'))) {
  console.log('▸ building the dashboard app (vite build)…');
  const code = await run(bin('vite'), ['build', '--logLevel', 'warn'], { cwd: appDir, env: process.env });
  if (code !== 0 || stopping) {
    console.error(stopping ? 'stopped' : `vite build failed (exit ${code})`);
    process.exit(code || 1);
  }
}

console.log('▸ starting Pulse in demo mode…');
const serverArgs = [
  '--conditions=source',
  join(root, 'packages/server/src/demo/main.ts'),
  '--static',
  distDir,
];
if (args.has('--no-generator')) serverArgs.push('--no-generator');
// Demo mode is only ever on when asked for; `npm start` is the demo, so it asks (config.ts).
const code = await run(bin('tsx'), serverArgs, { cwd: root, env: { ...process.env, PULSE_DEMO: 'true' } });
process.exit(code);
