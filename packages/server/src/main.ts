#!/usr/bin/env node
import { runMain } from './cli/signals.js';

const help = `pulse-server: a Pulse node (typed real-time tRPC over WebSocket + HTTP)

usage:
  pulse-server                 start a node configured from the environment
  pulse-server token [opts]    print a JWT signed with PULSE_JWT_SECRET (pulse-server token --help)
  pulse-server --help          this text

environment (all optional; defaults run on one machine with SQLite and an in-process bus):
  PULSE_JWT_SECRET      HS256 secret, at least 32 characters (tokens: pulse-server token)
  HOST, PORT            listen address (default 127.0.0.1:3001)
  PULSE_DATA_DIR        SQLite directory (default ./data)
  DATABASE_URL          postgres://… to use PostgreSQL instead of SQLite
  REDIS_URL             redis://… for the cross-node bus and presence
  PULSE_ALLOWED_ORIGINS comma-separated browser origins allowed (default: any)
  PULSE_LOG_LEVEL       fatal|error|warn|info|debug|trace|silent
See docs/operations.md for every variable.`;

/** CLI entry of the `pulse-server` bin: `token` mints a token, anything else starts a node. */
async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(help);
    return;
  }
  if (command === 'token') {
    // NOTE: imported lazily so `pulse-server token` never loads the server's drivers.
    const { runTokenCommand } = await import('./cli/token.js');
    console.log(await runTokenCommand(rest));
    return;
  }
  if (command !== undefined) {
    console.error(`unknown command "${command}"\n\n${help}`);
    process.exitCode = 2;
    return;
  }
  const { serve } = await import('./cli/serve.js');
  await serve();
}

runMain(main);
