import { Writable } from 'node:stream';
import { expect, vi } from 'vitest';
import WebSocket from 'ws';
import type { MintOptions } from '../../src/auth/token.js';
import { createLogger } from '../../src/infra/log.js';
import type { PulseServer } from '../../src/server.js';
import { collect, connectClient } from '../harness.js';

/** One frame from the server (a non-JSON text frame is kept as `{ text }`). */
export interface WireMessage {
  id?: string | number | null;
  method?: string;
  text?: string;
  error?: { code?: number; message?: string; data?: { code?: string } };
  result?: { type?: string; data?: unknown; id?: string };
}

/** A raw socket speaking Pulse's wire protocol by hand, recording every frame and the close. */
export interface RawSocket {
  socket: WebSocket;
  /** Parsed JSON frames. */
  messages: WireMessage[];
  closed: Promise<{ code: number; reason: string }>;
  send(frame: unknown): void;
  /** Waits for a frame matching `predicate`. */
  next(predicate: (message: WireMessage) => boolean): Promise<WireMessage>;
  close(): Promise<void>;
}

export interface RawOptions {
  /** Sent as the first frame `{ method: 'connectionParams', data: params }` unless `params === false`. */
  params?: unknown;
  headers?: Record<string, string>;
  /** Open without `?connectionParams=1` (token from the Authorization header, or none). */
  noParamsMode?: boolean;
}

/** Opens a raw socket; resolves once it is open (and its connectionParams frame went out). */
export function openRaw(url: string, opts: RawOptions = {}): Promise<RawSocket> {
  const socket = new WebSocket(opts.noParamsMode ? url : `${url}?connectionParams=1`, {
    headers: opts.headers,
  });
  const messages: WireMessage[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  socket.on('message', (raw) => {
    const text = raw.toString();
    try {
      messages.push(JSON.parse(text));
    } catch {
      messages.push({ text });
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    socket.once('open', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      if (opts.params !== false && !opts.noParamsMode)
        socket.send(JSON.stringify({ method: 'connectionParams', data: opts.params ?? null }));
      resolve({
        socket,
        messages,
        closed,
        send(frame) {
          socket.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
        },
        async next(predicate) {
          let found: WireMessage | undefined;
          await vi.waitFor(
            () => {
              found = messages.find(predicate);
              expect(found).toBeDefined();
            },
            { timeout: 5_000, interval: 10 },
          );
          return found as WireMessage;
        },
        async close() {
          if (socket.readyState === WebSocket.CLOSED) return;
          socket.close();
          await closed;
        },
      });
    });
  });
}

/** The tRPC error code inside a wire error frame. */
export const wireCode = (message: WireMessage | undefined): string | undefined => message?.error?.data?.code;

/** Proves the node still serves a fresh client end to end: subscribe, publish, receive. */
export async function expectHealthy(server: PulseServer & { token(o: MintOptions): Promise<string> }) {
  const client = connectClient(
    server,
    await server.token({ sub: 'healthy', workspaces: { 'health-ws': 'admin' } }),
  );
  try {
    const seen = collect<{ type: string }>();
    const sub = client.trpc.presence.onChange.subscribe({ workspaceId: 'health-ws' }, seen);
    await vi.waitFor(() => expect(seen.items[0]).toMatchObject({ type: 'snapshot' }), { timeout: 5_000 });
    await server.caller.presence.list({ workspaceId: 'health-ws' });
    await server.services.hub.publish('presence:health-ws', {
      type: 'leave',
      workspaceId: 'health-ws',
      at: new Date().toISOString(),
      userId: 'nobody',
    });
    await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'leave' })), {
      timeout: 5_000,
    });
    sub.unsubscribe();
  } finally {
    await client.close();
  }
}

/** Every connection, subscription, hub topic and timer is gone once the clients are. */
export async function expectDrained(server: PulseServer) {
  await vi.waitFor(
    () => {
      const s = server.stats();
      expect(s.transport).toMatchObject({ connections: 0, subscriptions: 0, users: 0 });
      expect(s.transport.subscriptionsByPath).toEqual({});
      expect(s.hub).toMatchObject({ topics: 0, sinks: 0 });
      expect(s.presence).toMatchObject({ connections: 0, graceTimers: 0, typing: 0 });
      expect(s.operations).toEqual({ connections: 0, workspaceSubscriptions: 0 });
    },
    { timeout: 8_000, interval: 25 },
  );
}

/** A debug-level logger whose JSON lines land in `lines` (log assertions). */
export function memoryLog() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', nodeId: 'node-log', destination }) };
}
