import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer } from '../support/vitest.js';

/** Opens a raw socket; resolves when it is open, or with the HTTP status of a refused upgrade. */
function dial(url: string): Promise<{ ws: WebSocket } | { status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('PULSE_MAX_PENDING_HANDSHAKES', () => {
  it('refuses upgrades past the limit with HTTP 503 + Retry-After before the handshake, and frees the slot', async () => {
    await using server = await startTestServer({ config: { limits: { maxPendingHandshakes: 2 } } });
    // Two sockets that never send their connectionParams hold both slots.
    const url = `${server.wsUrl}?connectionParams=1`;
    const held = [await dial(url), await dial(url)];
    for (const socket of held) expect(socket).toHaveProperty('ws');
    expect(await dial(url)).toEqual({ status: 503, retryAfter: '1' });
    // One leaves: its slot is free again, and the next upgrade is accepted.
    const first = held[0] as { ws: WebSocket };
    const closed = new Promise((resolve) => first.ws.once('close', resolve));
    first.ws.terminate();
    await closed;
    let next = await dial(url);
    for (let i = 0; i < 50 && 'status' in next; i++) next = await dial(url);
    expect(next).toHaveProperty('ws');
    for (const socket of [held[1], next]) if (socket && 'ws' in socket) socket.ws.terminate();
  });
});
