import type { RestEndpoint } from '../infra/rest.js';
import { userPresenceSchema } from '../presence/presence.schema.js';
import { globalStatsSchema, workspaceStatsSchema } from './stats.schema.js';
import { z } from 'zod';

/**
 * The REST paths of ARCHITECTURE.md §6 (seed parity). Each one is a tRPC procedure called with the
 * request's principal; the OpenAPI document is generated from this list.
 */
export const restEndpoints: RestEndpoint[] = [
  {
    method: 'GET',
    path: '/realtime/presence/workspace/:workspaceId',
    procedure: 'presence.list',
    type: 'query',
    summary: "Everyone online in a workspace (merged across each user's connections)",
    tags: ['presence'],
    input: (p) => ({ workspaceId: p.workspaceId }),
    output: z.array(userPresenceSchema),
  },
  {
    method: 'GET',
    path: '/realtime/presence/user/:userId/workspace/:workspaceId',
    procedure: 'presence.get',
    type: 'query',
    summary: "One user's presence in a workspace, or null when offline",
    tags: ['presence'],
    input: (p) => ({ workspaceId: p.workspaceId, userId: p.userId }),
    output: userPresenceSchema.nullable(),
  },
  {
    method: 'POST',
    path: '/realtime/notifications/send',
    procedure: 'notifications.send',
    type: 'mutation',
    summary: 'Send a notification to one user or a whole workspace (admin or service token)',
    tags: ['notifications'],
    input: (_p, body) => body,
  },
  {
    method: 'GET',
    path: '/realtime/stats',
    procedure: 'stats.global',
    type: 'query',
    summary: 'Connections, subscriptions and online users on every node',
    tags: ['stats'],
    input: () => undefined,
    output: globalStatsSchema,
  },
  {
    method: 'GET',
    path: '/realtime/stats/workspace/:workspaceId',
    procedure: 'stats.workspace',
    type: 'query',
    summary: "A workspace's connections, subscriptions and online users, per node",
    tags: ['stats'],
    input: (p) => ({ workspaceId: p.workspaceId }),
    output: workspaceStatsSchema,
  },
];
