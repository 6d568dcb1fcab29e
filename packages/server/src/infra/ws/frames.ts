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

/** `"result":{"type":"data",…}}`: the event serialised once, tracked id included. */
export function tailFor(event: HubEvent): Buffer {
  let tail = event.cache.get(TAIL_KEY) as Buffer | undefined;
  if (tail === undefined) {
    const json = event.json();
    if (event.id === undefined) tail = Buffer.from(`"result":{"type":"data","data":${json}}}`);
    else {
      const idJson = JSON.stringify(event.id);
      tail = Buffer.from(`"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`);
    }
    event.cache.set(TAIL_KEY, tail);
  }
  return tail;
}

/** A frame header for a payload of `length` bytes, followed by `prefix` (the payload's start). */
function frameHead(prefix: Buffer, length: number): Buffer {
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const head = Buffer.alloc(headerLength + prefix.length);
  head[0] = 0x81;
  if (headerLength === 2) head[1] = length;
  else if (headerLength === 4) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  prefix.copy(head, headerLength);
  return head;
}

/** An unmasked, unfragmented, uncompressed text frame (RFC 6455 §5.2) holding `head` + `body`. */
export function textFrame(head: Buffer, body: Buffer): Buffer {
  const length = head.length + body.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text
  if (headerLength === 2) frame[1] = length;
  else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  head.copy(frame, headerLength);
  body.copy(frame, headerLength + head.length);
  return frame;
}

export function itemFrame(prefix: string, item: LiveItem<unknown>): string {
  const json = JSON.stringify(item.data);
  if (item.id === undefined) return `${prefix}"result":{"type":"data","data":${json}}}`;
  const idJson = JSON.stringify(item.id);
  return `${prefix}"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`;
}
