import type { RestEndpoint } from '../infra/rest.js';
import { globalStatsSchema, workspaceStatsSchema } from './stats.schema.js';

/** Stats' REST paths (ARCHITECTURE.md §6): each one calls a stats procedure with the request's principal. */
export const statsRestEndpoints: RestEndpoint[] = [
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
