import { type TRPCRouterRecord, TRPCError } from '@trpc/server';
import { isOperator } from '../auth/access.js';
import { authedProcedure, memberProcedure } from '../trpc.js';
import { globalStatsSchema, workspaceStatsInput, workspaceStatsSchema } from './stats.schema.js';

export const statsRouter = {
  /**
   * Every node's connections and subscriptions, and users online, across every tenant: for
   * operators only (a backend service token without a workspace scope). A workspace admin reads
   * `stats.workspace` instead.
   */
  global: authedProcedure.output(globalStatsSchema).query(({ ctx }) => {
    if (!isOperator(ctx.principal))
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'Global stats need an operator token (a service token without a workspace scope)',
      });
    return ctx.services.stats.global();
  }),
  /** One workspace's connections, subscriptions and online users, per node. */
  workspace: memberProcedure
    .input(workspaceStatsInput)
    .output(workspaceStatsSchema)
    .query(({ ctx, input }) => ctx.services.stats.workspace(input.workspaceId)),
} satisfies TRPCRouterRecord;
