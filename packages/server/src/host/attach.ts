import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AnyTRPCRouter } from '@trpc/server';
import { createRequestHandler, type PulseRequestHandler } from '../infra/http.js';
import type { WsTransportStats } from '../infra/ws.js';
import type { AppRouter } from '../router.js';
import { createPulseNode, type PulseApi, type PulseServerOptions } from '../server.js';

/** Pulse mounted on the app's own server (`attachPulse`). */
export interface AttachedPulse<TRouter extends AnyTRPCRouter = AppRouter> extends PulseApi<TRouter> {
  /**
   * Pulse's HTTP side: `/trpc`, `/realtime/…` (REST), `/openapi.json`, `/healthz`, `/readyz`,
   * `/metrics`. Requests for other paths go to `next()` (Express middleware, a Fastify
   * `serverFactory`, a plain `http.createServer` handler).
   */
  readonly handler: PulseRequestHandler;
  /** The WebSocket path Pulse answers upgrades on (`/trpc`); other upgrades are left to the host. */
  readonly wsPath: string;
  stats(): { transport: WsTransportStats };
  /**
   * Graceful stop that leaves the host alone: tells Pulse's clients to reconnect, waits up to
   * `graceMs` for them, closes their sockets, stops the services, store and bus it created, and
   * unhooks itself from the host's upgrade events. The host's server and its other connections keep
   * running; close them yourself (after this, so Pulse's sockets leave first).
   */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * Mounts Pulse on an existing Node HTTP server (plain, Express's, Fastify's): the WebSocket
 * transport on its upgrade path (`/trpc` only) and a request handler for the HTTP side, next to the
 * app's own routes. `config.port` / `config.host` are ignored (the host listens); the host's own
 * timeouts and connection cap apply. Mount `handler` before body parsers (Pulse reads its own bodies).
 *
 * @example
 * const server = http.createServer();
 * const pulse = await attachPulse(server, { router: appRouter, config });
 * const app = express();
 * app.use(pulse.handler);
 * app.get('/hello', (_req, res) => res.send('hi'));
 * server.on('request', app);
 * server.listen(3000);
 * // shutdown: await pulse.close(); server.close();
 */
export async function attachPulse<TRouter extends AnyTRPCRouter = AppRouter>(
  server: Server,
  opts: PulseServerOptions<TRouter> = {},
): Promise<AttachedPulse<TRouter>> {
  const node = await createPulseNode(opts);
  const wsPath = '/trpc';
  // NOTE: the transport answers every upgrade of the server it is given (404 for other paths). On a
  // host server other upgrades belong to the host (its own WebSocket endpoints), so the transport
  // gets an emitter that sees only Pulse's path.
  const upgrades = new EventEmitter();
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    let pathname: string | null;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = null;
    }
    if (pathname === wsPath) {
      upgrades.emit('upgrade', req, socket, head);
      return;
    }
    // NOTE: with a listener attached Node leaves every upgrade to the listeners; when Pulse's is the
    // only one, nobody else will answer this one: refuse it instead of leaving the socket hanging.
    if (server.listenerCount('upgrade') === 1) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  };
  server.on('upgrade', onUpgrade);
  const transport = node.attachTransport(upgrades as unknown as Server);
  const handler = createRequestHandler(node.http);
  let closing: Promise<void> | null = null;
  return {
    ...node.api,
    handler,
    wsPath,
    stats: () => ({ transport: transport.stats() }),
    close(closeOpts = {}) {
      closing ??= (async () => {
        await transport.shutdown(closeOpts.graceMs ?? 500);
        server.off('upgrade', onUpgrade);
        await node.closeServices();
      })();
      return closing;
    },
  };
}
