// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import type { TRPCRouterRecord } from '@trpc/server';
import { adminProcedure, authedProcedure, memberProcedure, serviceProcedure } from '../trpc.js';
import {
  inboxConversationsInput,
  inboxMarkReadInput,
  inboxMessagesInput,
  inboxReceiveInput,
  inboxSendInput,
  inboxSetSlaInput,
  inboxSubscribeInput,
  inboxUpdateInput,
} from './inbox.schema.js';

// NOTE: procedures taking only `conversationId` load the conversation and check the caller's
// membership of its workspace in the service; another workspace's conversation is NOT_FOUND.
export const inboxRouter = {
  /** An incoming platform message (backend service): creates the conversation when new, starts its SLA clock. */
  receive: serviceProcedure
    .input(inboxReceiveInput)
    .mutation(({ ctx, input }) => ctx.services.inbox.receiveValidated(input)),
  /** A member's reply, idempotent by `clientMessageId`; stops the SLA clock. */
  send: authedProcedure
    .input(inboxSendInput)
    .mutation(({ ctx, input }) => ctx.services.inbox.send(ctx.principal, input)),
  /** Conversations, most recent first, with the caller's unread counts (cursor pagination). */
  conversations: memberProcedure
    .input(inboxConversationsInput)
    .query(({ ctx, input }) => ctx.services.inbox.conversations(ctx.principal, input)),
  /** The newest messages of a conversation in chronological order; `nextCursor` pages back. */
  messages: authedProcedure
    .input(inboxMessagesInput)
    .query(({ ctx, input }) => ctx.services.inbox.messages(ctx.principal, input)),
  /** Sets status (open / pending / closed) and/or assignee. */
  update: authedProcedure
    .input(inboxUpdateInput)
    .mutation(({ ctx, input }) => ctx.services.inbox.update(ctx.principal, input)),
  /** Moves the caller's read watermark; other members get a `read` receipt. */
  markRead: authedProcedure
    .input(inboxMarkReadInput)
    .mutation(({ ctx, input }) => ctx.services.inbox.markRead(ctx.principal, input)),
  /** Per-workspace SLA override in ms (admin); null returns to the server default. */
  setSla: adminProcedure
    .input(inboxSetSlaInput)
    .mutation(({ ctx, input }) => ctx.services.inbox.setSla(input.workspaceId, input.slaMs)),
  /** `message`, `conversation`, `read`, `sla_escalated` (and `reset`): durable, resumable with lastEventId. */
  onEvent: memberProcedure
    .input(inboxSubscribeInput)
    .subscription(({ ctx, input, signal }) => ctx.services.inbox.onEvent(input, signal)),
} satisfies TRPCRouterRecord;
