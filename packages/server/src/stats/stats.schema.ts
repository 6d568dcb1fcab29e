import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';

/** One node's live counts. */
export const nodeStatsSchema = z.object({
  nodeId: z.string(),
  /** Open, authenticated WebSocket connections. */
  connections: z.number().int(),
  /** Distinct users with at least one connection. */
  users: z.number().int(),
  subscriptions: z.number().int(),
  /** Subscriptions per procedure path, e.g. `presence.onChange`. */
  subscriptionsByPath: z.record(z.string(), z.number().int()),
  /** Hub topics with at least one local subscriber. */
  topics: z.number().int(),
  /** ISO time of this reading. */
  at: z.string(),
});
export type NodeStats = z.infer<typeof nodeStatsSchema>;

/** `stats.global`: every node and the totals. */
export const globalStatsSchema = z.object({
  nodes: z.array(nodeStatsSchema),
  totals: z.object({
    connections: z.number().int(),
    subscriptions: z.number().int(),
    /** Users online in any workspace (presence), counted once per workspace. */
    onlineUsers: z.number().int(),
  }),
  at: z.string(),
});
export type GlobalStats = z.infer<typeof globalStatsSchema>;

export const workspaceStatsInput = z.object({ workspaceId: idSchema });

/** `stats.workspace`: one workspace's share of the platform, per node and in total. */
export const workspaceStatsSchema = z.object({
  workspaceId: z.string(),
  /** Connections whose token grants this workspace. */
  connections: z.number().int(),
  /** Live subscriptions to this workspace's streams. */
  subscriptions: z.number().int(),
  /** Users present (presence) in this workspace. */
  onlineUsers: z.number().int(),
  nodes: z.array(
    z.object({ nodeId: z.string(), connections: z.number().int(), subscriptions: z.number().int() }),
  ),
  at: z.string(),
});
export type WorkspaceStats = z.infer<typeof workspaceStatsSchema>;
