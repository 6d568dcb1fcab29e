import { z } from 'zod';

/**
 * A durable stream id: the decimal sequence number of an event in its stream ("0" = before the
 * first event). Every durable domain's `lastEventId` input uses it.
 */
export const streamEventIdSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,15})$/, 'must be an event id from this stream');

/**
 * The stream position an HTTP answer was read at (`asOf`): the id of the newest event of the
 * workspace's stream committed when the answer's rows were read, in the same snapshot ("0" before
 * the first event). A live event with a larger id is not in the answer; one at or below it is.
 */
export const streamAsOfFields = { asOf: streamEventIdSchema };

/** Fields every durable event carries: its workspace (the stream) and when it happened. */
export const streamEventBase = { workspaceId: z.string(), at: z.string() };

/**
 * First event of a subscription started without `lastEventId`: the stream's head. Its tracked id
 * becomes the client's resume point, so a disconnect before any other event still resumes exactly.
 */
export const streamSyncEventSchema = z.object({
  type: z.literal('sync'),
  ...streamEventBase,
  headId: z.string(),
});
export type StreamSyncEvent = z.infer<typeof streamSyncEventSchema>;

/** The resume point is older than the retention window: refetch, then carry on after `headId`. */
export const streamResetEventSchema = z.object({
  type: z.literal('reset'),
  ...streamEventBase,
  /** The stream's newest id; the subscription continues after it. */
  headId: z.string(),
});
export type StreamResetEvent = z.infer<typeof streamResetEventSchema>;

/** The kernel's own events, which every durable domain's event union includes. */
export type StreamControlEvent = StreamSyncEvent | StreamResetEvent;

/** What a durable domain's events look like to the kernel (its zod union declares the rest). */
export interface DurableEvent {
  type: string;
  workspaceId: string;
}
