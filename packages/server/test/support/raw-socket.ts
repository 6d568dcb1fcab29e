import WebSocket from 'ws';
import { waitFor } from './wait.js';

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
          return waitFor(() => messages.find(predicate) ?? false, {
            timeoutMs: 5_000,
            intervalMs: 10,
            message: 'no matching frame arrived',
          });
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
