import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AnyTRPCRouter, getErrorShape, TRPCError } from '@trpc/server';
import { nodeHTTPRequestHandler } from '@trpc/server/adapters/node-http';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';

/** A plain handler tried before tRPC; returns true when it answered. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

/** Timeouts and caps of the HTTP server (see docs/security.md). */
export interface HttpServerLimits {
  /** Requests per tRPC HTTP batch (the same cap as per WebSocket frame). */
  maxBatch: number;
  /** Open TCP connections, HTTP and WebSocket together. */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface HttpServerOptions<TContext> {
  router: AnyTRPCRouter;
  createContext(req: IncomingMessage): Promise<TContext>;
  routes: HttpRoute[];
  maxBodySize: number;
  allowedOrigins: string[];
  limits: HttpServerLimits;
  /**
   * Every failed request: `error` is a TRPCError for client faults (PARSE_ERROR, BAD_REQUEST, …) and
   * server faults (INTERNAL_SERVER_ERROR) alike, so the caller logs each at its level.
   */
  onError?(error: TRPCError | unknown, info: { path: string | undefined; requestId?: string }): void;
  /** The request id a context carries (logged with errors). */
  requestIdOf?(ctx: TContext): string | undefined;
}

/** Pulse's HTTP handling as a request listener; with `next`, requests Pulse does not serve go there. */
export type PulseRequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

/**
 * One HTTP server: tRPC at /trpc (queries and mutations; subscriptions only over the WebSocket),
 * the extra routes, JSON 404 otherwise.
 */
export function createHttpServer<TContext>(opts: HttpServerOptions<TContext>): Server {
  const { limits } = opts;
  const handler = createRequestHandler(opts);
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // NOTE: Node checks the two timeouts above on this interval (30 s by default), which would
      // stretch a 10 s header limit to 40 s.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (req, res) => handler(req, res),
  );
  server.maxConnections = limits.maxConnections;
  return server;
}

/** Paths a preflight (`OPTIONS`) is answered for when Pulse runs beside a host app's routes. */
const PULSE_PREFIXES = ['/trpc', '/realtime/', '/openapi.json', '/healthz', '/readyz', '/metrics', '/demo/'];

/**
 * The request listener of `createHttpServer`, for a host server too (`attachPulse`): tRPC at
 * /trpc, the extra routes, then `next()` when given (the host's own routes), else a JSON 404.
 */
export function createRequestHandler<TContext>(opts: HttpServerOptions<TContext>): PulseRequestHandler {
  const { limits } = opts;
  return (req, res, next) => {
    void handle(req, res, next).catch((error) => {
      opts.onError?.(error, { path: req.url });
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' } });
      else res.end();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      if (next) return next();
      // NOTE: a client fault (e.g. `GET //[`), answered and logged as one, never a 500.
      opts.onError?.(new TRPCError({ code: 'BAD_REQUEST', message: 'Malformed request target' }), {
        path: undefined,
      });
      sendJson(res, 400, { error: { code: 'BAD_REQUEST', message: 'Malformed request target' } });
      return;
    }
    // NOTE: beside a host app, CORS and preflights of the host's own paths are the host's.
    if (next && !PULSE_PREFIXES.some((prefix) => url.pathname.startsWith(prefix))) return next();
    applyCors(req, res, opts.allowedOrigins);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/trpc' || url.pathname.startsWith('/trpc/')) {
      const path = url.pathname.slice('/trpc/'.length);
      if (refuseSubscription(res, path)) return;
      let requestId: string | undefined;
      await nodeHTTPRequestHandler({
        req,
        res,
        path,
        router: opts.router,
        maxBodySize: opts.maxBodySize,
        maxBatchSize: limits.maxBatch,
        createContext: async () => {
          const ctx = await opts.createContext(req);
          requestId = opts.requestIdOf?.(ctx);
          return ctx;
        },
        onError: ({ error, path: p }) => opts.onError?.(error, { path: p, requestId }),
      });
      return;
    }
    for (const route of opts.routes) if (await route(req, res, url)) return;
    if (next) return next();
    sendJson(res, 404, {
      error: { code: 'NOT_FOUND', message: `No route for ${req.method} ${url.pathname}` },
    });
  }

  /**
   * Subscriptions over HTTP (tRPC's server-sent events) are refused before the procedure runs: a
   * clear METHOD_NOT_SUPPORTED in tRPC's error envelope, no stream.
   */
  function refuseSubscription(res: ServerResponse, path: string): boolean {
    const procedures = opts.router._def.procedures as Record<string, { _def?: { type?: string } }>;
    const isSubscription = path
      .split(',')
      .some((p) => Object.hasOwn(procedures, p) && procedures[p]?._def?.type === 'subscription');
    if (!isSubscription) return false;
    const error = new TRPCError({
      code: 'METHOD_NOT_SUPPORTED',
      message: `Subscriptions are served over the WebSocket only (${path}): connect with wsLink`,
    });
    opts.onError?.(error, { path });
    const shape = getErrorShape({
      config: opts.router._def._config,
      error,
      type: 'subscription',
      path,
      input: undefined,
      ctx: undefined,
    });
    sendJson(res, getHTTPStatusCodeFromError(error), { error: shape });
    return true;
  }
}

function applyCors(req: IncomingMessage, res: ServerResponse, allowed: string[]) {
  const origin = req.headers.origin;
  if (!origin) return;
  if (allowed.length > 0 && !allowed.includes(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, trpc-accept, x-trpc-source');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

/** Reads a JSON body up to `limit` bytes; throws with `status` 413 / 400 on violations. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw Object.assign(new Error(`Body exceeds ${limit} bytes`), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw Object.assign(new Error('Body is not valid JSON'), { status: 400 });
  }
}
