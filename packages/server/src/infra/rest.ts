import type { IncomingMessage } from 'node:http';
import {
  type AnyTRPCRouter,
  callTRPCProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  TRPCError,
} from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { z } from 'zod';
import { type HttpRoute, readJsonBody, sendJson } from './http.js';

/** One REST path served by a tRPC procedure (same middlewares, auth and zod validation). */
export interface RestEndpoint {
  method: 'GET' | 'POST';
  /** `/realtime/presence/workspace/:workspaceId` */
  path: string;
  /** tRPC procedure path, e.g. `presence.list`. */
  procedure: string;
  type: 'query' | 'mutation';
  summary: string;
  tags: string[];
  /** Builds the procedure input from path parameters and the JSON body. */
  input(params: Record<string, string>, body: unknown): unknown;
  /** Response schema for the OpenAPI document (else the procedure's output parser, if any). */
  output?: z.ZodType;
}

export interface RestOptions<TContext> {
  router: AnyTRPCRouter;
  endpoints: RestEndpoint[];
  createContext(req: IncomingMessage): Promise<TContext>;
  maxBodyBytes: number;
  /** The request id a context carries; sent back as `x-request-id` and passed to `onError`. */
  requestIdOf?(ctx: TContext): string | undefined;
  onError?(error: TRPCError, info: { procedure: string; status: number; requestId?: string }): void;
}

/** The JSON error body every REST path returns. */
export interface RestErrorBody {
  error: {
    code: string;
    message: string;
    issues?: Array<{ path: string[]; message: string; code: string }>;
  };
}

interface CompiledEndpoint {
  endpoint: RestEndpoint;
  regex: RegExp;
  names: string[];
}

function compile(endpoint: RestEndpoint): CompiledEndpoint {
  const names: string[] = [];
  const pattern = endpoint.path
    .split('/')
    .map((part) => {
      if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(part.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { endpoint, regex: new RegExp(`^${pattern}$`), names };
}

/**
 * REST over the tRPC router: each endpoint calls its procedure with the request's principal, so
 * auth, limits and validation are identical to `/trpc`. Errors are `{ error: { code, message,
 * issues? } }` with the HTTP status tRPC assigns to the code.
 */
export function createRestRoute<TContext>(opts: RestOptions<TContext>): HttpRoute {
  const compiled = opts.endpoints.map(compile);
  const config = opts.router._def._config;

  return async (req, res, url) => {
    let match: { endpoint: RestEndpoint; params: Record<string, string> } | null = null;
    let pathMatched = false;
    for (const c of compiled) {
      const m = c.regex.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (c.endpoint.method !== req.method) continue;
      const params: Record<string, string> = {};
      try {
        c.names.forEach((name, i) => {
          params[name] = decodeURIComponent(m[i + 1] ?? '');
        });
      } catch {
        sendError(new TRPCError({ code: 'BAD_REQUEST', message: 'Malformed path parameter' }), 'rest');
        return true;
      }
      match = { endpoint: c.endpoint, params };
      break;
    }
    if (!match) {
      if (!pathMatched) return false;
      res.setHeader(
        'allow',
        compiled
          .filter((c) => c.regex.test(url.pathname))
          .map((c) => c.endpoint.method)
          .join(', '),
      );
      sendError(
        new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: `${req.method} not allowed` }),
        'rest',
      );
      return true;
    }
    const { endpoint, params } = match;
    let input: unknown;
    let ctx: TContext | undefined;
    try {
      let body: unknown;
      if (endpoint.method === 'POST') {
        try {
          body = await readJsonBody(req, opts.maxBodyBytes);
        } catch (cause) {
          const status = (cause as { status?: number }).status;
          throw new TRPCError({
            code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'PARSE_ERROR',
            message: (cause as Error).message,
          });
        }
      }
      input = endpoint.input(params, body);
      ctx = await opts.createContext(req);
      const requestId = opts.requestIdOf?.(ctx);
      if (requestId) res.setHeader('x-request-id', requestId);
      const data = await callTRPCProcedure({
        router: opts.router,
        path: endpoint.procedure,
        getRawInput: async () => input,
        ctx,
        type: endpoint.type,
        signal: undefined,
        batchIndex: 0,
      });
      sendJson(res, 200, data ?? null);
    } catch (cause) {
      sendError(getTRPCErrorFromUnknown(cause), endpoint.procedure, endpoint.type, input, ctx);
    }
    return true;

    function sendError(
      error: TRPCError,
      procedure: string,
      type: 'query' | 'mutation' | 'unknown' = 'unknown',
      rawInput?: unknown,
      context?: TContext,
    ) {
      const status = getHTTPStatusCodeFromError(error);
      const requestId = context === undefined ? undefined : opts.requestIdOf?.(context);
      opts.onError?.(error, { procedure, status, ...(requestId ? { requestId } : {}) });
      const shape = getErrorShape({ config, error, type, path: procedure, input: rawInput, ctx: context });
      const issues = (shape.data as { issues?: RestErrorBody['error']['issues'] }).issues;
      // NOTE: internal failures (a store error's text may name hosts or queries) never reach clients.
      const message = error.code === 'INTERNAL_SERVER_ERROR' ? 'Internal server error' : error.message;
      const body: RestErrorBody = { error: { code: error.code, message, ...(issues ? { issues } : {}) } };
      if (error.code === 'UNAUTHORIZED') res.setHeader('www-authenticate', 'Bearer');
      sendJson(res, status, body);
    }
  };
}
