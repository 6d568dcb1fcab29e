#!/usr/bin/env node
// `npm start`: the whole demo on embedded defaults (server in demo mode for now).
import { spawn } from 'node:child_process';

const child = spawn('npm', ['run', 'server'], { stdio: 'inherit', env: process.env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
