/**
 * The fan-out fast path writes pre-built WebSocket frames straight to the TCP socket: every
 * subscriber must still get a valid frame with its own subscription id, whatever the event size
 * (7-bit, 16-bit and 64-bit length encodings) and whether its id is shared with others or not.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initTRPC } from '@trpc/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openRaw, type RawSocket } from '../../test/support/vitest.js';
import { createMemoryBus } from './bus/memory-bus.js';
import { Hub } from './hub.js';
import { liveDurable, liveEphemeral } from './live.js';
import { attachWebSocket } from './ws.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer() {
  const hub = new Hub(createMemoryBus());
  const t = initTRPC.create({ isDev: false });
  const router = t.router({
    ticks: t.procedure.subscription(({ signal }) =>
      liveEphemeral<{ n: number; pad: string }>(hub, { topic: 'ticks', signal, initial: async () => [] }),
    ),
    log: t.procedure.subscription(({ signal }) =>
      liveDurable<{ n: number }>(hub, { topic: 'log', signal, initial: async () => [] }),
    ),
  });
  const delivered: number[] = [];
  const http = createServer();
  const transport = attachWebSocket(http, {
    router,
    limits: {
      maxPayloadBytes: 64 * 1024,
      maxBatch: 16,
      maxSubscriptions: 16,
      maxConnectionsPerUser: 1000,
      authTimeoutMs: 5_000,
      pingMs: 30_000,
      pongWaitMs: 10_000,
      slowDropBytes: 4 * 1024 * 1024,
      slowCloseBytes: 8 * 1024 * 1024,
    },
    allowedOrigins: [],
    createContext: async () => ({}),
    identify: () => null,
    onDelivered: (count) => delivered.push(count),
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/trpc`;
  cleanups.push(async () => {
    await transport.shutdown(0);
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { hub, url, delivered };
}

describe('fan-out frames', () => {
  it('gives every subscriber its own id in valid frames of every length encoding, shared ids or not', async () => {
    const { hub, url, delivered } = await startServer();
    // 90 distinct ids (more than the per-event frame cache holds) and 30 sockets all using id 1.
    const ids: Array<string | number> = [
      ...Array.from({ length: 90 }, (_, i) => (i % 2 ? `sub-${i}` : 1000 + i)),
      ...Array.from({ length: 30 }, () => 1),
    ];
    const sockets: RawSocket[] = [];
    for (const id of ids) {
      const socket = await openRaw(url, { params: null });
      cleanups.push(() => socket.close());
      socket.send({ id, method: 'subscription', params: { path: 'ticks', input: null } });
      sockets.push(socket);
    }
    await vi.waitFor(() => expect(hub.stats().sinks).toBe(ids.length));

    const sizes = [10, 1_000, 70_000]; // payloads under 126 bytes, under 64 KiB, and over
    for (const [n, size] of sizes.entries()) await hub.publish('ticks', { n, pad: 'x'.repeat(size) });

    await vi.waitFor(() => {
      for (const socket of sockets)
        expect(socket.messages.filter((m) => m.result?.type === 'data')).toHaveLength(3);
    });
    sockets.forEach((socket, index) => {
      const data = socket.messages.filter((m) => m.result?.type === 'data');
      expect(data.map((m) => m.id)).toEqual([ids[index], ids[index], ids[index]]);
      expect(data.map((m) => (m.result?.data as { pad?: string } | undefined)?.pad?.length)).toEqual(sizes);
    });
    // Delivery metrics: one report per event with the number of sockets written.
    await vi.waitFor(() => expect(delivered).toEqual([ids.length, ids.length, ids.length]));
  });

  it('carries tracked ids on the durable fast path, in order, to every subscriber', async () => {
    const { hub, url } = await startServer();
    const sockets: RawSocket[] = [];
    for (let i = 0; i < 20; i++) {
      const socket = await openRaw(url, { params: null });
      cleanups.push(() => socket.close());
      socket.send({ id: i, method: 'subscription', params: { path: 'log', input: null } });
      sockets.push(socket);
    }
    await vi.waitFor(() => expect(hub.stats().sinks).toBe(20));
    for (let n = 1; n <= 5; n++) await hub.publish('log', { n }, String(n));
    await vi.waitFor(() => {
      for (const socket of sockets)
        expect(socket.messages.filter((m) => m.result?.type === 'data')).toHaveLength(5);
    });
    sockets.forEach((socket, index) => {
      const data = socket.messages.filter((m) => m.result?.type === 'data');
      expect(data.map((m) => [m.id, m.result?.id, m.result?.data])).toEqual(
        [1, 2, 3, 4, 5].map((n) => [index, String(n), { id: String(n), data: { n } }]),
      );
    });
  });
});
