import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type HttpRoute, sendJson } from './http.js';
import type { PulseMetrics } from './metrics.js';

export interface OpsRoutesOptions {
  nodeId: string;
  metrics: PulseMetrics;
  /** Resolves when the store and bus answer; its error text is logged, never sent. */
  ready(): Promise<void>;
  /** When set, `/metrics` needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** Without a token: serve `/metrics` to loopback callers only (the public port's default). */
  loopbackOnly: boolean;
  /** Serve `/metrics` at all (false on the public port when an ops port is configured). */
  serveMetrics: boolean;
  onNotReady?(error: unknown): void;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** True when the request comes from this machine (127.0.0.0/8, ::1, IPv4-mapped loopback). */
export function fromLoopback(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress ?? '';
  return /^(127\.|::1$|::ffff:127\.)/.test(address);
}

/** `/healthz`, `/readyz` and `/metrics` with the access rules of docs/security.md "Ops endpoints". */
export function opsRoutes(opts: OpsRoutesOptions): HttpRoute[] {
  const expected = opts.metricsToken ? digest(opts.metricsToken) : null;
  return [
    (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/healthz') return false;
      sendJson(res, 200, { ok: true, nodeId: opts.nodeId });
      return true;
    },
    async (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/readyz') return false;
      try {
        await opts.ready();
        sendJson(res, 200, { ok: true });
      } catch (error) {
        // NOTE: the backend's own text (hosts, users, queries) goes to the log only.
        opts.onNotReady?.(error);
        sendJson(res, 503, { ok: false, error: 'not ready: the store or the bus does not answer' });
      }
      return true;
    },
    async (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/metrics' || !opts.serveMetrics) return false;
      if (expected) {
        const presented = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
        if (!presented || !timingSafeEqual(digest(presented), expected)) {
          res.setHeader('www-authenticate', 'Bearer');
          sendJson(res, 401, { error: { code: 'UNAUTHORIZED', message: 'Metrics need the metrics token' } });
          return true;
        }
      } else if (opts.loopbackOnly && !fromLoopback(req)) {
        sendJson(res, 403, {
          error: {
            code: 'FORBIDDEN',
            message: 'Metrics are served to loopback callers only; set PULSE_METRICS_TOKEN or PULSE_OPS_PORT',
          },
        });
        return true;
      }
      const { contentType, body } = await opts.metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
      return true;
    },
  ];
}

/** A second listener for the ops endpoints only (`PULSE_OPS_PORT`); anything else is 404. */
export function createOpsServer(routes: HttpRoute[], onError?: (error: unknown) => void): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      for (const route of routes) if (await route(req, res, url)) return;
      sendJson(res, 404, {
        error: { code: 'NOT_FOUND', message: `No route for ${req.method} ${url.pathname}` },
      });
    })().catch((error) => {
      onError?.(error);
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' } });
      else res.end();
    });
  });
}
