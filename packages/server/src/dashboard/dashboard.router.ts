import type { TRPCRouterRecord } from '@trpc/server';
import { adminProcedure, memberProcedure } from '../trpc.js';
import { dashboardHistoryInput } from './dashboard.history.js';
import { dashboardFilterInput, dashboardPublishInput } from './dashboard.schema.js';

export const dashboardRouter = {
  /** Publishes one value (admin of the workspace or a backend service); it becomes the latest for its key. */
  publish: adminProcedure
    .input(dashboardPublishInput)
    .mutation(({ ctx, input }) => ctx.services.dashboard.publish(input)),
  /** The latest value per kind/platform/account/metric key. */
  snapshot: memberProcedure
    .input(dashboardFilterInput)
    .query(({ ctx, input }) => ctx.services.dashboard.snapshot(input)),
  /** Raw points or 1-minute / 1-hour buckets of one kind over a window; `until` is the seam with `onUpdate`. */
  history: memberProcedure
    .input(dashboardHistoryInput)
    .query(({ ctx, input }) => ctx.services.dashboard.readHistory(input)),
  /** A snapshot, then live updates matching `kinds` / `platforms` (after `since`: the stored ones first). */
  onUpdate: memberProcedure
    .input(dashboardFilterInput)
    .subscription(({ ctx, input, signal }) => ctx.services.dashboard.onUpdate(input, signal)),
} satisfies TRPCRouterRecord;
