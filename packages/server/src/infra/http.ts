import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AnyTRPCRouter } from '@trpc/server';
import { nodeHTTPRequestHandler } from '@trpc/server/adapters/node-http';

/** A plain handler tried before tRPC; returns true when it answered. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

export interface HttpServerOptions<TContext> {
  router: AnyTRPCRouter;
  createContext(req: IncomingMessage): Promise<TContext>;
  routes: HttpRoute[];
  maxBodySize: number;
  allowedOrigins: string[];
  onError?(error: unknown, path: string | undefined): void;
}

/** One HTTP server: tRPC at /trpc, the extra routes, JSON 404 otherwise. */
export function createHttpServer<TContext>(opts: HttpServerOptions<TContext>): Server {
  return createServer((req, res) => {
    void handle(req, res).catch((error) => {
      opts.onError?.(error, req.url);
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal error' } });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    applyCors(req, res, opts.allowedOrigins);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/trpc' || url.pathname.startsWith('/trpc/')) {
      const path = url.pathname.slice('/trpc/'.length);
      await nodeHTTPRequestHandler({
        req,
        res,
        path,
        router: opts.router,
        maxBodySize: opts.maxBodySize,
        createContext: () => opts.createContext(req),
        onError: ({ error, path: p }) => {
          if (error.code === 'INTERNAL_SERVER_ERROR') opts.onError?.(error, p);
        },
      });
      return;
    }
    for (const route of opts.routes) if (await route(req, res, url)) return;
    sendJson(res, 404, {
      error: { code: 'NOT_FOUND', message: `No route for ${req.method} ${url.pathname}` },
    });
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
