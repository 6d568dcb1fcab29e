import { mintDemoTokens } from '../auth/demo.js';
import { loadConfig } from '../config.js';
import { startPulseServer } from '../server.js';
import { stopOnSignals } from './signals.js';

/** Starts one node from the environment and stops it cleanly on SIGINT/SIGTERM. */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const server = await startPulseServer({ config });
  console.log(`Pulse ${config.nodeId} listening on ${server.url} (WebSocket ${server.wsUrl})`);
  console.log(`  store: ${server.services.store.dialect}   bus: ${server.services.bus.kind}`);
  console.log(`  ops: ${server.url}/readyz  ${server.url}/metrics  ${server.url}/openapi.json`);
  if (config.demoMode) {
    const tokens = await mintDemoTokens(config.jwt);
    console.log('\n  ************************************************************************');
    console.log(
      config.secretGenerated
        ? '  DEMO MODE (PULSE_DEMO=true): a random secret was generated and the tokens below are'
        : '  DEMO MODE (PULSE_DEMO=true): demo tokens are signed with PULSE_JWT_SECRET; they are',
    );
    console.log('  valid until this process stops (7 days at most). Never run this in production.');
    console.log('  ************************************************************************\n');
    for (const t of tokens) {
      const ws =
        Object.entries(t.workspaces)
          .map(([w, r]) => `${w}:${r}`)
          .join(',') || (t.service ? 'service' : '-');
      console.log(`  ${t.sub.padEnd(13)} ${ws.padEnd(28)} ${t.token}`);
    }
    const alice = tokens[0]!.token;
    console.log(
      `\n  try: curl -H "Authorization: Bearer ${alice.slice(0, 16)}…" '${server.url}/trpc/presence.list?input=${encodeURIComponent(JSON.stringify({ workspaceId: 'acme' }))}'`,
    );
  }
  stopOnSignals(
    () => server.close({ graceMs: 2000 }),
    (signal) => `${signal}: telling clients to reconnect and draining…`,
  );
}
