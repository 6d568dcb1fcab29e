import type { TRPCRouterRecord } from '@trpc/server';
import { memberProcedure } from '../trpc.js';
import {
  presenceSetInput,
  presenceUserInput,
  typingSetInput,
  typingSubscribeInput,
} from './presence.schema.js';

/** `presence.set` per user and workspace, after the input was parsed (docs/security.md). */
const setThrottled = memberProcedure.input(presenceSetInput).use(async ({ ctx, input, next }) => {
  if (!ctx.principal.service)
    await ctx.services.rateLimiter.consume('presence', `${ctx.principal.userId}:${input.workspaceId}`);
  return next();
});

/**
 * `presence.typing` with `isTyping: true` at most once per interval per user and conversation: a
 * refresh inside the interval is accepted as a no-op (the indicator is shown and expires by itself);
 * `isTyping: false` always passes.
 */
const typingThrottled = memberProcedure.input(typingSetInput).use(async ({ ctx, input, next }) => {
  // NOTE: runs after memberProcedure checked access, so only members' refreshes are throttled.
  if (
    input.isTyping &&
    !ctx.principal.service &&
    (await ctx.services.rateLimiter.typingThrottled(
      `${ctx.principal.userId}:${input.workspaceId}:${input.conversationId}`,
    ))
  ) {
    return { ok: true as const, data: { ok: true as const }, marker: 'middlewareMarker' as never, ctx };
  }
  return next();
});

export const presenceRouter = {
  /** Sets the caller's status, page and activity for this connection. */
  set: setThrottled.mutation(({ ctx, input }) =>
    ctx.services.presence.set(ctx.principal, ctx.connectionId, input),
  ),
  /** Leaves the workspace on this connection at once (no grace); the user's other tabs keep them present. */
  leave: memberProcedure.mutation(async ({ ctx, input }) => {
    await ctx.services.presence.leave(ctx.principal, ctx.connectionId, input.workspaceId);
    return { ok: true as const };
  }),
  /** Reports typing in a conversation; it expires by itself. */
  typing: typingThrottled.mutation(async ({ ctx, input }) => {
    await ctx.services.presence.setTyping(ctx.principal, input);
    return { ok: true as const };
  }),
  /** Everyone online in the workspace. */
  list: memberProcedure.query(({ ctx, input }) => ctx.services.presence.list(input.workspaceId)),
  /** One user's presence, or null when offline. */
  get: memberProcedure
    .input(presenceUserInput)
    .query(({ ctx, input }) => ctx.services.presence.get(input.workspaceId, input.userId)),
  isOnline: memberProcedure
    .input(presenceUserInput)
    .query(({ ctx, input }) => ctx.services.presence.isOnline(input.workspaceId, input.userId)),
  /** A snapshot, then join / update / leave. */
  onChange: memberProcedure.subscription(({ ctx, input, signal }) =>
    ctx.services.presence.onChange(input.workspaceId, signal),
  ),
  /** Who is typing, then changes (optionally one conversation). */
  onTyping: memberProcedure
    .input(typingSubscribeInput)
    .subscription(({ ctx, input, signal }) =>
      ctx.services.presence.onTyping(input.workspaceId, input.conversationId, signal),
    ),
} satisfies TRPCRouterRecord;
