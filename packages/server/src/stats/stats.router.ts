import { type TRPCRouterRecord, TRPCError } from '@trpc/server';
import { authedProcedure, memberProcedure } from '../trpc.js';
import { globalStatsSchema, workspaceStatsInput, workspaceStatsSchema } from './stats.schema.js';

export const statsRouter = {
  /**
   * Every node's connections and subscriptions, and users online. For backend services without a
   * workspace scope, and for users who administer at least one workspace.
   */
  global: authedProcedure.output(globalStatsSchema).query(({ ctx }) => {
    const p = ctx.principal;
    const allowed = p.service
      ? Object.keys(p.workspaces).length === 0
      : Object.values(p.workspaces).includes('admin');
    if (!allowed)
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Global stats need an admin or service token' });
    return ctx.services.stats.global();
  }),
  /** One workspace's connections, subscriptions and online users, per node. */
  workspace: memberProcedure
    .input(workspaceStatsInput)
    .output(workspaceStatsSchema)
    .query(({ ctx, input }) => ctx.services.stats.workspace(input.workspaceId)),
} satisfies TRPCRouterRecord;
