import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AttachedPulse, attachPulse } from '@pulse/server';
import Fastify from 'fastify';
import { type AppRouter, createApp } from './app.js';
import { mapClaims } from './auth.js';
import type { ExampleServerOptions } from './express-server.js';

/**
 * The app's own Fastify server with Pulse mounted on it. Fastify's `serverFactory` hands us its
 * request handler: Pulse's handler runs first and passes the app's paths on to Fastify.
 */
export async function startFastifyExample(opts: ExampleServerOptions) {
  const app = createApp();
  let pulse: AttachedPulse<AppRouter> | undefined;
  let server: Server | undefined;
  const fastify = Fastify({
    serverFactory: (fastifyHandler) => {
      server = createServer((req, res) => {
        if (!pulse) return fastifyHandler(req, res);
        pulse.handler(req, res, () => fastifyHandler(req, res));
      });
      return server;
    },
  });
  fastify.get('/api/health', async () => ({ ok: true, app: 'example-fastify' }));
  await fastify.ready();
  if (!server) throw new Error('Fastify did not build its server');
  pulse = await attachPulse(server, {
    router: app.appRouter,
    config: opts.config,
    sqliteFile: opts.sqliteFile ?? ':memory:',
    auth: { claims: mapClaims },
  });
  await fastify.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  const { port } = server.address() as AddressInfo;
  const attached = pulse;
  return {
    ...app,
    pulse: attached,
    fastify,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/trpc`,
    async close() {
      await attached.close({ graceMs: 0 });
      await fastify.close();
    },
  };
}
