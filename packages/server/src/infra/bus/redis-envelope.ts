import type { BusHandler, BusMessage } from './bus.js';

/** The control channel (after the prefix) that asks every node to resync its live streams. */
export const RESYNC_CHANNEL = '__resync';

/**
 * The wire form of a message: `{"id":…,"data":…,"publishedAt":…}`, exactly what
 * `JSON.stringify` of the message gives, so nodes of either version read each other's messages.
 * A pre-serialised `json` is spliced in as `data` instead of stringifying the event again.
 */
export function envelope(message: BusMessage): string {
  if (message.json === undefined || message.id === undefined || message.publishedAt === undefined) {
    return JSON.stringify({ id: message.id, data: message.data, publishedAt: message.publishedAt });
  }
  return `{"id":${JSON.stringify(message.id)},"data":${message.json},"publishedAt":${message.publishedAt}}`;
}

/** `{"id":"…","data":` … `,"publishedAt":123}`: the shape `envelope` writes for durable events. */
const ENVELOPE_HEAD = /^\{"id":"((?:[^"\\]|\\.)*)","data":/;
const ENVELOPE_TAIL = /,"publishedAt":(\d+)\}$/;

/**
 * Reads a wire message. For durable events the event's JSON is cut out of the envelope and kept,
 * so the hub hands sockets the very bytes the writer stored (parsed once, for filters; never
 * stringified again). Anything else is parsed as plain JSON.
 */
export function parseEnvelope(raw: string): BusMessage {
  const head = ENVELOPE_HEAD.exec(raw);
  const tail = head ? ENVELOPE_TAIL.exec(raw.slice(-40)) : null;
  if (head && tail) {
    const json = raw.slice(head[0].length, raw.length - tail[0].length);
    const id = JSON.parse(`"${head[1]}"`) as string;
    return { id, data: JSON.parse(json), publishedAt: Number(tail[1]), json };
  }
  return JSON.parse(raw) as BusMessage;
}

/**
 * Hands one raw wire message to a channel's handlers (the Redis and Redis Cluster buses share it).
 * Returns whether it was for a held channel; a message that does not parse goes to `onError`.
 */
export function dispatchRaw(
  handlers: ReadonlySet<BusHandler> | undefined,
  raw: string,
  onError: (error: Error) => void,
): boolean {
  if (!handlers) return false;
  let message: BusMessage;
  try {
    message = parseEnvelope(raw);
  } catch (error) {
    onError(error as Error);
    return true;
  }
  for (const handler of handlers) handler(message);
  return true;
}

/** Calls every resync listener and counts the resync; one listener's failure does not stop the others. */
export function fireResyncListeners(listeners: Iterable<() => void>, counters: { resyncs: number }): void {
  counters.resyncs++;
  for (const listener of listeners) {
    try {
      listener();
    } catch {
      // a listener's failure must not stop the others
    }
  }
}

/**
 * Holds `channel` with `subscribe` (SUBSCRIBE or SSUBSCRIBE) and records the acknowledgement in
 * `acks`; a failure is reported, and the bus's next restore subscribes every channel still wanted.
 */
export function holdChannel(
  channel: string,
  subscribe: (channel: string) => Promise<unknown>,
  acks: Map<string, Promise<void>>,
  onError: (error: Error) => void,
): Promise<void> {
  const ack = subscribe(channel).then(
    () => {},
    (error: Error) => onError(error),
  );
  acks.set(channel, ack);
  return ack;
}
