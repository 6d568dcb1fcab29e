import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachPulse, type PulseConfigInput } from '@pulse/server';
import express from 'express';
import { createApp } from './app.js';
import { mapClaims } from './auth.js';

export interface ExampleServerOptions {
  /** Pulse's configuration (JWKS URL, issuer, audience, store…). */
  config: PulseConfigInput;
  sqliteFile?: string;
  port?: number;
}

/**
 * The app's own Express server with Pulse mounted on it: Pulse answers `/trpc` (HTTP and the
 * WebSocket) and `/realtime/…`; the app keeps its own routes. Shutdown is the app's: Pulse first
 * (its clients are told to reconnect elsewhere), then the host server.
 */
export async function startExpressExample(opts: ExampleServerOptions) {
  const app = createApp();
  const server: Server = createServer();
  const pulse = await attachPulse(server, {
    router: app.appRouter,
    config: opts.config,
    sqliteFile: opts.sqliteFile ?? ':memory:',
    auth: { claims: mapClaims },
  });
  const web = express();
  // Pulse reads its own request bodies: mount it before any body parser.
  web.use(pulse.handler);
  web.use(express.json());
  web.get('/api/health', (_req, res) => {
    res.json({ ok: true, app: 'example' });
  });
  web.post('/api/echo', (req, res) => {
    res.json({ echo: req.body });
  });
  server.on('request', web);
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...app,
    pulse,
    server,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/trpc`,
    async close() {
      await pulse.close({ graceMs: 0 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
