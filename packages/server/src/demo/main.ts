import { parseArgs } from 'node:util';
import { runMain, stopOnSignals } from '../cli/signals.js';
import { loadConfig } from '../config.js';
import { startDemoServer } from './demo-server.js';

/**
 * `npm start`'s server: one Pulse node in demo mode serving the built dashboard app, with the demo
 * traffic generator. Usage: `tsx --conditions=source src/demo/main.ts [--static dir] [--no-generator]`.
 */
async function main() {
  const { values } = parseArgs({
    options: { static: { type: 'string' }, 'no-generator': { type: 'boolean', default: false } },
  });
  // NOTE: a short SLA by default, so inbox escalations show within the first minutes of a demo.
  // NOTE: this entry point IS the demo: demo mode is asked for here, explicitly (config.ts refuses it in
  // production and on a non-loopback host unless PULSE_DEMO_FORCE=true).
  const config = loadConfig({ PULSE_INBOX_SLA_MS: '120000', ...process.env, PULSE_DEMO: 'true' });
  const demo = await startDemoServer({
    config,
    staticDir: values.static,
    generator: !values['no-generator'],
  });
  const { server } = demo;
  const line = '─'.repeat(74);
  console.log(`\n  ${line}`);
  console.log(`  Pulse demo is running:  \x1b[1m\x1b[36m${server.url}/\x1b[0m`);
  console.log(`  ${line}`);
  console.log(
    `  store: ${server.services.store.dialect}   bus: ${server.services.bus.kind}   node: ${config.nodeId}`,
  );
  console.log(`  WebSocket: ${server.wsUrl}   demo traffic: ${demo.generator ? 'on' : 'off'}`);
  console.log('\n  DEMO MODE: tokens below are signed with a demo secret and valid until this stops.');
  console.log('  Never expose demo mode to a network you do not trust.\n');
  for (const t of demo.tokens) {
    const ws =
      Object.entries(t.workspaces)
        .map(([w, r]) => `${w}:${r}`)
        .join(', ') || (t.service ? 'service' : '-');
    console.log(`  ${t.name.padEnd(14)} ${t.sub.padEnd(13)} ${ws}`);
  }
  console.log(`\n  Open ${server.url}/ and sign in as Alice; open a second window as Bob.`);
  console.log('  Tokens for scripts: GET /demo/tokens.   Ctrl-C stops everything.\n');

  stopOnSignals(
    () => demo.close({ graceMs: 1000 }),
    (signal) => `${signal}: stopping the demo…`,
  );
}

runMain(main);
