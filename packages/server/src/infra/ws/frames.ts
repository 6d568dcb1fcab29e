/**
 * Frame building for the fan-out fast path: each event serialised once, complete frames shared by
 * subscriptions with the same id, one header writer (RFC 6455 §5.2, server frames are unmasked).
 */
import type { HubEvent } from '../hub.js';
import type { LiveItem } from '../live.js';

/** Distinct subscription-id prefixes whose frames one event keeps (beyond it, frames are not cached). */
const FRAME_CACHE_LIMIT = 64;
const TAIL_KEY = '\u0000tail';

/**
 * The complete frame of `{"id":…,"result":{"type":"data",…}}` for one event and one subscription-id
 * prefix, shared by every subscription with that id (wsLink numbers subscriptions per client, so
 * many clients share ids). Only the first `FRAME_CACHE_LIMIT` prefixes of an event get one; the
 * others return null and write their own header + id before the shared tail.
 */
export function sharedFrame(event: HubEvent, group: PrefixGroup): Buffer | null {
  const cache = event.cache;
  const cached = cache.get(group.prefix) as Buffer | undefined;
  if (cached) return cached;
  if (cache.size >= FRAME_CACHE_LIMIT) return null;
  const frame = textFrame(group.bytes, tailFor(event));
  cache.set(group.prefix, frame);
  return frame;
}

/**
 * The message payload (no frame header) of `event` for one id prefix, for ws's own `send`
 * (`PULSE_WS_FRAMING=ws`, a benchmark switch): shared by the prefix's subscriptions when several
 * use it, as `sharedFrame` is.
 */
export function wsPayload(event: HubEvent, group: PrefixGroup): Buffer {
  const key = `\u0000ws${group.prefix}`;
  const cached = event.cache.get(key) as Buffer | undefined;
  if (cached) return cached;
  const payload = Buffer.concat([group.bytes, tailFor(event)]);
  if (group.count > 1 && event.cache.size < FRAME_CACHE_LIMIT) event.cache.set(key, payload);
  return payload;
}

/** The subscriptions of a transport that share one id prefix `{"id":…,`, and its frame header. */
export class PrefixGroup {
  count = 0;
  readonly bytes: Buffer;
  private head: Buffer | null = null;
  private headLength = -1;
  constructor(readonly prefix: string) {
    this.bytes = Buffer.from(prefix);
  }
  /**
   * Frame header + prefix for a tail of `tailLength` bytes. Rebuilt only when the length changes and
   * never mutated, since a write still queued on some socket may hold it.
   */
  headFor(tailLength: number): Buffer {
    if (this.headLength !== tailLength || !this.head) {
      this.head = frameHead(this.bytes, this.bytes.length + tailLength);
      this.headLength = tailLength;
    }
    return this.head;
  }
}

/** `"result":{"type":"data",…}}` for data already serialised as `json`, with its tracked id if any. */
function dataResult(json: string, id: string | undefined): string {
  if (id === undefined) return `"result":{"type":"data","data":${json}}}`;
  const idJson = JSON.stringify(id);
  return `"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`;
}

/** The shared tail of every frame of `event`: the event serialised once, tracked id included. */
export function tailFor(event: HubEvent): Buffer {
  let tail = event.cache.get(TAIL_KEY) as Buffer | undefined;
  if (tail === undefined) {
    tail = Buffer.from(dataResult(event.json(), event.id));
    event.cache.set(TAIL_KEY, tail);
  }
  return tail;
}

/** A replayed or snapshot item as a complete message text (`prefix` is `{"id":…,`). */
export function itemFrame(prefix: string, item: LiveItem<unknown>): string {
  return prefix + dataResult(item.json ?? JSON.stringify(item.data), item.id);
}

/** Bytes of the header of an unmasked frame with a payload of `length` bytes. */
function headerSize(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/**
 * The one header writer: FIN + text opcode and the payload length (7-bit, 16-bit or 64-bit form),
 * unmasked as server frames are (RFC 6455 §5.2). Returns the header's size.
 */
function writeHeader(frame: Buffer, length: number): number {
  const size = headerSize(length);
  frame[0] = 0x81;
  if (size === 2) frame[1] = length;
  else if (size === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return size;
}

/** A frame header for a payload of `length` bytes, followed by `prefix` (the payload's start). */
function frameHead(prefix: Buffer, length: number): Buffer {
  const head = Buffer.alloc(headerSize(length) + prefix.length);
  prefix.copy(head, writeHeader(head, length));
  return head;
}

/** An unmasked, unfragmented, uncompressed text frame (RFC 6455 §5.2) holding `head` + `body`. */
export function textFrame(head: Buffer, body: Buffer): Buffer {
  const length = head.length + body.length;
  const frame = Buffer.allocUnsafe(headerSize(length) + length);
  const size = writeHeader(frame, length);
  head.copy(frame, size);
  body.copy(frame, size + head.length);
  return frame;
}
