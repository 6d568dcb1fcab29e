import { type TrackedEnvelope, TRPCError, tracked } from '@trpc/server';
import type { Hub, HubEvent, HubSink } from './hub.js';

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
}

/** Items a generic iterator may hold for a consumer that does not keep up. */
const ITERATOR_QUEUE_LIMIT = 10_000;

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
    const queue: HubEvent[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    let replay = false;
    const sink: HubSink = {
      deliver(event) {
        if (queue.length >= ITERATOR_QUEUE_LIMIT) {
          if (spec.durable) overflow = true;
          else queue.shift();
        }
        queue.push(event);
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
    const attachment = this.hub.attach(spec.topic, sink);
    try {
      await attachment.ready;
      let lastId = spec.lastEventId;
      for (const item of await spec.initial(lastId)) {
        if (item.id !== undefined) lastId = item.id;
        yield wrap<TYield>(item.id, item.data);
      }
      while (!spec.signal?.aborted) {
        if (overflow) {
          throw new TRPCError({
            code: 'TOO_MANY_REQUESTS',
            message: 'Consumer too slow; resume with lastEventId',
          });
        }
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
        const event = queue.shift();
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
