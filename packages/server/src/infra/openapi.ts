import type { AnyTRPCRouter } from '@trpc/server';
import { z } from 'zod';
import type { RestEndpoint } from './rest.js';

type JsonSchema = Record<string, unknown>;

const ERROR_CODES: Record<string, string> = {
  '400': 'Invalid input (`BAD_REQUEST`, with `issues`) or malformed JSON (`PARSE_ERROR`)',
  '401': 'Missing, invalid or expired Bearer token (`UNAUTHORIZED`)',
  '403': 'The token does not grant this workspace (`FORBIDDEN`)',
  '404': 'Unknown resource (`NOT_FOUND`)',
  '413': 'Body over the size limit (`PAYLOAD_TOO_LARGE`)',
  '429': 'Rate limit exceeded (`TOO_MANY_REQUESTS`)',
  '500': 'Internal failure, e.g. the store is unreachable (`INTERNAL_SERVER_ERROR`)',
};

const errorSchema: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', examples: ['FORBIDDEN'] },
        message: { type: 'string' },
        issues: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              path: { type: 'array', items: { type: 'string' } },
              message: { type: 'string' },
              code: { type: 'string' },
            },
          },
        },
      },
    },
  },
};

function toJsonSchema(schema: unknown, io: 'input' | 'output'): JsonSchema | null {
  if (!(schema instanceof z.ZodType)) return null;
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** tRPC merges chained `.input()` objects; the document does the same with their JSON schemas. */
function mergeInputs(parsers: unknown[]): JsonSchema | null {
  const schemas = parsers.map((p) => toJsonSchema(p, 'input')).filter((s): s is JsonSchema => s !== null);
  if (schemas.length === 0) return null;
  if (schemas.length === 1) return schemas[0]!;
  if (schemas.every((s) => s.type === 'object' && s.properties)) {
    const properties: Record<string, unknown> = {};
    const required = new Set<string>();
    for (const s of schemas) {
      Object.assign(properties, s.properties);
      for (const r of (s.required as string[] | undefined) ?? []) required.add(r);
    }
    return { type: 'object', properties, required: [...required], additionalProperties: false };
  }
  return { allOf: schemas };
}

interface ProcedureDef {
  inputs: unknown[];
  output?: unknown;
}

function procedureDef(router: AnyTRPCRouter, path: string): ProcedureDef | null {
  const procedure = (router._def.procedures as Record<string, { _def: ProcedureDef } | undefined>)[path];
  return procedure?._def ?? null;
}

export interface OpenApiOptions {
  router: AnyTRPCRouter;
  endpoints: RestEndpoint[];
  title?: string;
  version?: string;
  serverUrl?: string;
}

/**
 * An OpenAPI 3.1 document for the REST endpoints, generated from the same zod schemas the
 * procedures validate with (zod 4's `z.toJSONSchema`), plus the operational paths.
 */
export function createOpenApiDocument(opts: OpenApiOptions): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const endpoint of opts.endpoints) {
    const def = procedureDef(opts.router, endpoint.procedure);
    // NOTE: an endpoint whose procedure has not landed yet is left out rather than documented wrong.
    if (!def) continue;
    const input = mergeInputs(def.inputs);
    const inputProps = (input?.properties ?? {}) as Record<string, JsonSchema>;
    const oaPath = endpoint.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [...endpoint.path.matchAll(/:([A-Za-z]+)/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      schema: inputProps[name!] ?? { type: 'string' },
    }));
    const output = toJsonSchema(endpoint.output ?? def.output, 'output') ?? {};
    const responses: Record<string, unknown> = {
      '200': { description: 'OK', content: { 'application/json': { schema: output } } },
    };
    for (const [status, description] of Object.entries(ERROR_CODES)) {
      if (status === '413' && endpoint.method !== 'POST') continue;
      responses[status] = {
        description,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    paths[oaPath] ??= {};
    paths[oaPath][endpoint.method.toLowerCase()] = {
      operationId: endpoint.procedure.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase()),
      summary: endpoint.summary,
      tags: endpoint.tags,
      description: `Served by the tRPC procedure \`${endpoint.procedure}\` (same auth and validation).`,
      security: [{ bearerAuth: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(endpoint.method === 'POST' && input
        ? { requestBody: { required: true, content: { 'application/json': { schema: input } } } }
        : {}),
      responses,
    };
  }
  const plain = (description: string, contentType: string, schema: JsonSchema) => ({
    get: {
      summary: description,
      tags: ['operations'],
      security: [],
      responses: { '200': { description: 'OK', content: { [contentType]: { schema } } } },
    },
  });
  paths['/healthz'] = plain('Liveness: the process answers', 'application/json', {
    type: 'object',
    properties: { ok: { type: 'boolean' }, nodeId: { type: 'string' } },
  });
  paths['/readyz'] = {
    get: {
      ...plain('Readiness: the store and the bus answer', 'application/json', {
        type: 'object',
        properties: { ok: { type: 'boolean' } },
      }).get,
      responses: {
        '200': { description: 'Ready' },
        '503': { description: 'The store or the bus is unreachable' },
      },
    },
  };
  paths['/metrics'] = plain('Prometheus metrics', 'text/plain', { type: 'string' });
  paths['/openapi.json'] = plain('This document', 'application/json', { type: 'object' });

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: opts.title ?? 'Pulse REST API',
      version: opts.version ?? '0.1.0',
      description:
        'REST parity endpoints over the Pulse tRPC router. Authenticate with `Authorization: Bearer <jwt>`. The typed tRPC API lives at `/trpc` (HTTP) and `ws://…/trpc` (WebSocket).',
    },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Error: errorSchema },
    },
  };
}
