import { type TrackedEnvelope, TRPCError, tracked } from '@trpc/server';
import type { Hub, HubAttachment, HubEvent, HubSink } from './hub.js';

/** One item sent before the live tail: a snapshot entry or a replayed durable event. */
export interface LiveItem<T> {
  id?: string;
  data: T;
}

/** What a subscription procedure streams; domains describe it, transports execute it. */
export interface LiveSpec<T> {
  /** Hub topic the live tail comes from. */
  topic: string;
  /** Cheap per-subscriber predicate on each live event (workspace scoping is done by the topic). */
  filter?: (data: T) => boolean;
  /**
   * Items sent first. Called after the bus subscription is live, so nothing published meanwhile is
   * lost. `afterId` is the last durable id the subscriber has (resume), or undefined.
   */
  initial: (afterId: string | undefined) => Promise<Array<LiveItem<T>>>;
  /** Durable streams carry ordered ids: events at or below the last delivered id are dropped. */
  durable: boolean;
  /** Resume point sent by the client (`lastEventId`). */
  lastEventId?: string;
  /** Ephemeral streams: slow sockets keep only the latest event per key instead of queueing. */
  coalesceKey?: (data: T) => string;
  /** Aborts the stream (procedure signal). */
  signal?: AbortSignal;
  /**
   * Live events a generic iterator holds for a consumer that does not keep up (default
   * `DEFAULT_QUEUE_LIMIT`). Past it a durable stream ends with a resumable error; an ephemeral one
   * keeps the newest events (one per coalesce key when it has one).
   */
  queueLimit?: number;
}

/** Default of `LiveSpec.queueLimit`. */
export const DEFAULT_QUEUE_LIMIT = 1_000;

/** The error a durable stream ends with when its consumer fell too far behind. */
export function consumerTooSlow(): TRPCError {
  return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'Consumer too slow; resume with lastEventId' });
}

/** Compares two durable ids (decimal strings of increasing sequence numbers). */
export function idAfter(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  return a.length === b.length ? a > b : a.length > b.length;
}

/**
 * The value a Pulse subscription resolver returns. It is an ordinary `AsyncIterable`
 * (server-side callers, any tRPC adapter iterate it), and Pulse's WebSocket handler recognises
 * it and attaches the socket straight to the hub, skipping per-subscriber async loops.
 */
export class LiveStream<TYield> implements AsyncIterable<TYield> {
  constructor(
    readonly hub: Hub,
    // biome-ignore lint/suspicious/noExplicitAny: the spec's event type is erased at this boundary
    readonly spec: LiveSpec<any>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<TYield> {
    return this.iterate()[Symbol.asyncIterator]();
  }

  private async *iterate(): AsyncGenerator<TYield> {
    const { spec } = this;
    const limit = spec.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    // Ephemeral streams with a coalesce key keep the newest event per key (insertion order).
    const coalesced = !spec.durable && spec.coalesceKey ? new Map<string, HubEvent>() : null;
    let queue: HubEvent[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    let replay = false;
    // NOTE: assigned after the sink that detaches it is built.
    let attachment: HubAttachment | undefined;
    const sink: HubSink = {
      deliver(event) {
        if (overflow) return;
        if (coalesced) {
          const key = spec.coalesceKey?.(event.data) as string;
          coalesced.delete(key);
          coalesced.set(key, event);
          if (coalesced.size > limit) coalesced.delete(coalesced.keys().next().value as string);
        } else if (queue.length >= limit) {
          if (spec.durable) {
            // NOTE: at once, not when the consumer next reads: drop what is held and leave the topic,
            // so a stalled consumer holds nothing; it resumes from its lastEventId.
            overflow = true;
            queue = [];
            attachment?.detach();
            wake?.();
            return;
          }
          queue.shift();
          queue.push(event);
        } else queue.push(event);
        wake?.();
      },
      resync() {
        // Replayed from the store (durable) or a fresh snapshot (ephemeral) before the queued events.
        replay = true;
        wake?.();
      },
    };
    const onAbort = () => wake?.();
    spec.signal?.addEventListener('abort', onAbort);
    attachment = this.hub.attach(spec.topic, sink);
    const take = (): HubEvent | undefined => {
      if (!coalesced) return queue.shift();
      const first = coalesced.entries().next();
      if (first.done) return undefined;
      coalesced.delete(first.value[0]);
      return first.value[1];
    };
    try {
      await attachment.ready;
      let lastId = spec.lastEventId;
      for (const item of await spec.initial(lastId)) {
        if (overflow) throw consumerTooSlow();
        if (item.id !== undefined) lastId = item.id;
        yield wrap<TYield>(item.id, item.data);
      }
      while (!spec.signal?.aborted) {
        if (overflow) throw consumerTooSlow();
        if (replay) {
          replay = false;
          for (const item of await spec.initial(spec.durable ? lastId : undefined)) {
            if (spec.durable && item.id !== undefined) {
              if (!idAfter(item.id, lastId)) continue;
              lastId = item.id;
            }
            yield wrap<TYield>(item.id, item.data);
          }
          continue;
        }
        const event = take();
        if (!event) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (spec.filter && !spec.filter(event.data)) continue;
        if (spec.durable && event.id !== undefined) {
          if (!idAfter(event.id, lastId)) continue;
          lastId = event.id;
        }
        yield wrap<TYield>(event.id, event.data);
      }
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
      attachment.detach();
    }
  }
}

function wrap<TYield>(id: string | undefined, data: unknown): TYield {
  return (id === undefined ? data : tracked(id, data)) as TYield;
}

/** A live stream of ephemeral events: snapshot first, then updates. */
export function liveEphemeral<T>(
  hub: Hub,
  spec: Omit<LiveSpec<T>, 'durable' | 'lastEventId'>,
): LiveStream<T> {
  return new LiveStream<T>(hub, { ...spec, durable: false });
}

/** A resumable stream of durable, id-ordered events (yields `tracked(id, event)`). */
export function liveDurable<T>(
  hub: Hub,
  spec: Omit<LiveSpec<T>, 'durable' | 'coalesceKey'>,
): LiveStream<TrackedEnvelope<T>> {
  return new LiveStream<TrackedEnvelope<T>>(hub, { ...spec, durable: true });
}
