import type { RestEndpoint } from '../infra/rest.js';
import { userPresenceSchema } from './presence.schema.js';
import { z } from 'zod';

/** Presence's REST paths (ARCHITECTURE.md §6): each one calls a presence procedure with the request's principal. */
export const presenceRestEndpoints: RestEndpoint[] = [
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
];
