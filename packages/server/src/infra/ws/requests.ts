/** Incoming frames: connection params, then requests (alone or batched) checked against the limits. */
import { TRPCError, getTRPCErrorFromUnknown } from '@trpc/server';
import { parseTRPCMessage, type TRPCClientOutgoingMessage } from '@trpc/server/rpc';
import type { Connection } from './connection.js';
import { DEFAULT_MAX_IN_FLIGHT } from './options.js';
import { Request, run } from './procedures.js';
import { guard } from './transport.js';

/** One frame from the client: connection params first, then requests (alone or batched). */
export function receive<TContext>(conn: Connection<TContext>, data: Buffer, isBinary: boolean): void {
  conn.lastSeen = Date.now();
  conn.pingSentAt = 0;
  const transport = conn.transport;
  if (!isBinary) {
    // PING/PONG are text whatever the encoder (as the stock adapter).
    if (data.length === 4) {
      const text = data.toString('latin1');
      if (text === 'PONG') return;
      if (text === 'PING') {
        if (!transport.opts.dangerouslyDisablePong) conn.send('PONG');
        return;
      }
    }
  }
  if (!conn.ctxPromise) {
    let params: Record<string, string> | null;
    try {
      params = parseConnectionParams(data, isBinary, transport);
    } catch (cause) {
      // NOTE: as the stock adapter: PARSE_ERROR and a plain close, not 4401 (the token may be fine).
      const error = getTRPCErrorFromUnknown(cause);
      clearTimeout(conn.authTimer);
      conn.authTimer = undefined;
      conn.ctxPromise = Promise.resolve(conn.refuse(error, undefined, ''));
      return;
    }
    conn.startContext(params);
    return;
  }
  let parsed: unknown;
  try {
    parsed = transport.decode(data, isBinary);
  } catch (cause) {
    // NOTE: the parser's message, as the stock adapter sends it.
    conn.fail(null, new TRPCError({ code: 'PARSE_ERROR', cause }));
    return;
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const { maxBatch } = conn.transport.limits;
  if (items.length === 0 || items.length > maxBatch) {
    conn.fail(
      null,
      new TRPCError({
        code: items.length === 0 ? 'BAD_REQUEST' : 'PAYLOAD_TOO_LARGE',
        message:
          items.length === 0
            ? 'Empty batch'
            : `Batch of ${items.length} requests exceeds the limit of ${maxBatch}`,
      }),
    );
    return;
  }
  for (let index = 0; index < items.length; index++) {
    const item: unknown = items[index];
    let msg: TRPCClientOutgoingMessage;
    try {
      msg = parseTRPCMessage(item, conn.transport.config.transformer);
    } catch (cause) {
      const rawId = (item as { id?: unknown } | null)?.id;
      const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
      conn.fail(
        id,
        new TRPCError({
          code: 'PARSE_ERROR',
          message: `Invalid request: ${(cause as Error).message}`,
          cause,
        }),
      );
      continue;
    }
    handleRequest(conn, msg, index);
  }
}

function handleRequest<TContext>(
  conn: Connection<TContext>,
  msg: TRPCClientOutgoingMessage,
  batchIndex: number,
): void {
  const { id, jsonrpc } = msg;
  if (id === null || id === undefined) {
    conn.fail(null, new TRPCError({ code: 'PARSE_ERROR', message: '`id` is required' }), {}, jsonrpc);
    return;
  }
  if (msg.method === 'subscription.stop') {
    conn.subs.get(id)?.stop(true);
    return;
  }
  const { path: procPath, lastEventId } = msg.params;
  let { input } = msg.params;
  const type = msg.method;
  if (lastEventId !== undefined) {
    if (input !== null && typeof input === 'object' && !Array.isArray(input))
      input = { ...input, lastEventId };
    else input ??= { lastEventId };
  }
  const extra = { type, path: procPath, input };

  if (type === 'subscription') {
    if (conn.subs.has(id)) {
      conn.fail(id, new TRPCError({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }), extra, jsonrpc);
      return;
    }
    const { maxSubscriptions } = conn.transport.limits;
    if (conn.subs.size >= maxSubscriptions) {
      conn.fail(
        id,
        new TRPCError({
          code: 'TOO_MANY_REQUESTS',
          message: `Subscription limit (${maxSubscriptions}) reached on this connection`,
        }),
        extra,
        jsonrpc,
      );
      return;
    }
  } else {
    const maxInFlight = conn.transport.limits.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (conn.inFlight >= maxInFlight) {
      conn.fail(
        id,
        new TRPCError({
          code: 'TOO_MANY_REQUESTS',
          message: `Too many requests in flight (limit ${maxInFlight}) on this connection`,
        }),
        extra,
        jsonrpc,
      );
      return;
    }
    conn.inFlight += 1;
  }
  const request = new Request(conn, id, jsonrpc, extra);
  if (type === 'subscription') {
    // Reserve the id at once so a duplicate in the same frame is refused.
    conn.subs.set(id, request);
    conn.transport.incrementPath(procPath);
  }
  run(conn, request, batchIndex).catch((cause) => {
    // NOTE: e.g. a result JSON.stringify refuses (BigInt, cycle): that request fails, nothing else.
    guard(conn, () => {
      request.stop(false);
      request.fail(cause);
    });
  });
}

/**
 * The first frame of a `?connectionParams=1` socket, with the stock adapter's errors: PARSE_ERROR
 * "Malformed TRPCConnectionParamsMessage" for a frame that is not an object, "Invalid connection
 * params shape" for `data` that is not null or an object of strings.
 */
function parseConnectionParams(
  frame: Buffer,
  isBinary: boolean,
  transport: { decode(data: Buffer, isBinary: boolean): unknown },
): Record<string, string> | null {
  let msg: unknown;
  try {
    msg = transport.decode(frame, isBinary);
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
      throw new Error('Message was not an object');
  } catch (cause) {
    throw new TRPCError({
      code: 'PARSE_ERROR',
      message: 'Malformed TRPCConnectionParamsMessage',
      cause,
    });
  }
  const data = (msg as { data?: unknown }).data;
  if (data === null) return null;
  if (data === undefined || typeof data !== 'object' || Array.isArray(data))
    throw new TRPCError({ code: 'PARSE_ERROR', message: 'Invalid connection params shape' });
  const params: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string')
      throw new TRPCError({ code: 'PARSE_ERROR', message: 'Invalid connection params shape' });
    params[key] = value;
  }
  return params;
}
