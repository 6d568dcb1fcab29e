/**
 * One server under test, in its own process (the runner pins it to one core). It listens on an
 * ephemeral port, publishes one event per `publish` command and reports CPU and memory on `stats`.
 * Usage: `node --expose-gc --import tsx --conditions=source src/server.ts <kind>`.
 */
import { execFileSync } from 'node:child_process';
import { openSync, readSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { pack } from 'msgpackr';
import { WebSocketServer } from 'ws';
import { defineChannel, type PulseServer } from '@pulse/server';
import { z } from 'zod';
import {
  BENCH_POST_ID,
  benchEvent,
  descriptorLimit,
  type ServerCommand,
  type ServerKind,
  type ServerReply,
  WORKSPACE_ID,
} from './shared.js';

interface BenchServer {
  port: number;
  path: string;
  publish(seq: number): void | Promise<void>;
  extra(): Record<string, number>;
  close(): Promise<void>;
}

const reply = (message: ServerReply) => process.send?.(message);

async function listen(http: HttpServer): Promise<number> {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return (http.address() as AddressInfo).port;
}

async function startRawWs(kind: ServerKind): Promise<BenchServer> {
  const http = createServer();
  const wss = new WebSocketServer({
    server: http,
    // threshold 0: without it ws skips frames under 1 KiB, and the bench event is ~400 bytes.
    perMessageDeflate: kind === 'ws-deflate' ? { threshold: 0 } : false,
  });
  const binary = kind === 'ws-msgpack';
  // The accept bench (BENCH_ACCEPT=1): each new client's first message is echoed (its "first reply").
  if (process.env.BENCH_ACCEPT === '1') {
    wss.on('connection', (client) =>
      client.on('message', (data, isBinary) => client.send(data, { binary: isBinary })),
    );
  }
  return {
    port: await listen(http),
    path: '/',
    publish(seq) {
      const event = benchEvent(seq);
      // The usual ws broadcast: encode once, send the same buffer to every open client.
      const data = binary ? pack(event) : Buffer.from(JSON.stringify(event));
      const options = { binary };
      for (const client of wss.clients) if (client.readyState === 1) client.send(data, options);
    },
    extra: () => ({}),
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

async function startSocketIo(): Promise<BenchServer> {
  const { Server } = await import('socket.io');
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  const accept = process.env.BENCH_ACCEPT === '1';
  io.on('connection', (socket) => {
    void socket.join(WORKSPACE_ID);
    // The accept bench (BENCH_ACCEPT=1): a client joins its room with an acknowledged event.
    if (accept) {
      socket.on('join', (room: unknown, ack?: (reply: { ok: boolean }) => void) => {
        if (typeof room === 'string') void socket.join(room);
        ack?.({ ok: typeof room === 'string' });
      });
    }
  });
  return {
    port: await listen(http),
    path: '/socket.io/',
    publish(seq) {
      io.to(WORKSPACE_ID).emit('update', benchEvent(seq));
    },
    extra: () => ({}),
    async close() {
      io.disconnectSockets(true);
      await io.close();
    },
  };
}

async function startPulse(kind: ServerKind): Promise<BenchServer> {
  const { channelRouter, pulseRouters, resolveConfig, router } = await import('@pulse/server');
  const { startTestServer } = await import('@pulse/server/testing');
  const secret = process.env.BENCH_SECRET;
  if (!secret) throw new Error('BENCH_SECRET is not set');
  // Port 0 on loopback, in-memory SQLite, silent: @pulse/server/testing's node, but with the
  // production presence timers (the test ones are short) so the figures are a deployment's.
  const server = await startTestServer({
    // NOTE: the app's own durable channel rides beside Pulse's routers, as an app serves it.
    router: router({ ...pulseRouters, channels: channelRouter([benchChannel]) }),
    config: {
      jwt: { secret },
      presence: resolveConfig({ jwt: { secret } }).presence,
      // NOTE: every load client connects from 127.0.0.1, while real clients come from many
      // addresses: the per-address cap of unauthenticated sockets (100) refused some of the 2×128
      // handshakes the two client processes keep in flight at N ≥ 5,000.
      // NOTE: the node's cap of open connections (50,000 by default) would refuse the last
      // subscribers of the 50,000-socket run (bench:50k) and the HTTP upgrades beside them.
      limits: { maxUnauthenticatedPerIp: 1_000_000, maxConnections: 1_000_000 },
    },
  });
  const publish = await pulsePublisher(kind, server);
  return {
    port: server.port,
    path: '/trpc',
    publish,
    extra: () => ({ ...server.stats().hub }),
    close: () => server.close({ graceMs: 0 }),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: any router the bench serves
type PulseNode = PulseServer<any>;

/** The custom durable channel of `pulse-channel`: the bench event, validated, stored, resumable. */
const benchChannel = defineChannel({
  name: 'bench',
  input: z.object({ postId: z.string() }),
  event: z.looseObject({ type: z.literal('metric'), title: z.string() }),
  durable: true,
  retention: 1_000,
});

async function pulsePublisher(kind: ServerKind, server: PulseNode): Promise<(seq: number) => Promise<void>> {
  if (kind === 'pulse-channel') {
    return async (seq) => {
      await server.channels.publish(benchChannel, {
        workspaceId: WORKSPACE_ID,
        input: { postId: BENCH_POST_ID },
        event: benchEvent(seq),
      });
    };
  }
  if (kind === 'pulse-presence') {
    // Stand-in stream: a presence-shaped event through the hub, as the presence service publishes.
    return (seq) => server.services.hub.publish(`presence:${WORKSPACE_ID}`, benchEvent(seq));
  }
  // biome-ignore lint/suspicious/noExplicitAny: the domain routers may not exist in this checkout yet
  const caller = server.caller as any;
  if (kind === 'pulse-dashboard') {
    if (!caller.dashboard?.publish) throw new Error('dashboard.publish is not available');
    return async (seq) => {
      await caller.dashboard.publish(dashboardInput(benchEvent(seq)));
    };
  }
  if (!caller.notifications?.send) throw new Error('notifications.send is not available');
  return async (seq) => {
    const e = benchEvent(seq);
    // Workspace-wide (no userId): every member's stream gets it, with its tracked id.
    await caller.notifications.send({
      workspaceId: WORKSPACE_ID,
      type: 'alert',
      title: e.title,
      body: `${e.note} ${e.tags.join(' ')}`,
      data: { alertType: 'system', severity: 'info', message: `${e.metric} ${e.value} (${e.window})` },
    });
  };
}

/** A `post` update of about the same size as the other servers' event (its `title` carries the marker). */
function dashboardInput(e: ReturnType<typeof benchEvent>) {
  return {
    workspaceId: WORKSPACE_ID,
    kind: 'post',
    platform: e.platform,
    accountId: e.accountId,
    postId: 'post-0042',
    status: 'published',
    title: `${e.title} ${e.note}`,
    url: 'https://example.com/p/post-0042',
    metrics: { impressions: e.value, reach: 880, likes: 120, comments: 14, shares: 9, saves: 31, clicks: 57 },
  };
}

// NOTE: process.memoryUsage() opens /proc/self/stat on every call, which throws EMFILE once the
// server holds as many sockets as its descriptor limit allows (the 50,000-socket run): keep
// /proc/self/statm open from the start and re-read it in place.
const statm = (() => {
  try {
    return openSync('/proc/self/statm', 'r');
  } catch {
    return undefined;
  }
})();
const statmBuffer = Buffer.alloc(256);
function residentBytes(): number {
  if (statm === undefined) return process.memoryUsage.rss();
  const length = readSync(statm, statmBuffer, 0, statmBuffer.length, 0);
  const pages = Number(statmBuffer.toString('latin1', 0, length).split(' ')[1]);
  return pages * PAGE_BYTES;
}
const PAGE_BYTES = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

async function main() {
  const kind = process.argv[2] as ServerKind;
  const server = kind.startsWith('pulse')
    ? await startPulse(kind)
    : kind === 'socketio'
      ? await startSocketIo()
      : await startRawWs(kind);
  const gc = (globalThis as { gc?: () => void }).gc;
  // Event-loop delay between two stats calls (the accept bench reads it over its window).
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.race([server.close(), new Promise((resolve) => setTimeout(resolve, 3000))]);
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('message', (message: ServerCommand) => {
    switch (message.cmd) {
      case 'publish':
        void Promise.resolve(server.publish(message.seq)).catch((error: Error) =>
          reply({ type: 'error', message: `publish ${message.seq}: ${error.message}` }),
        );
        return;
      case 'stats': {
        if (message.gc && gc) {
          gc();
          gc();
        }
        const cpu = process.cpuUsage();
        reply({
          type: 'stats',
          rss: residentBytes(),
          heapUsed: getHeapStatistics().used_heap_size,
          cpuMicros: cpu.user + cpu.system,
          userMicros: cpu.user,
          extra: server.extra(),
          monoMicros: Number(process.hrtime.bigint() / 1000n),
          loopDelay: {
            p50: loop.percentile(50) / 1e6,
            p99: loop.percentile(99) / 1e6,
            max: loop.max / 1e6,
          },
        });
        loop.reset();
        return;
      }
      case 'heapSnapshot':
        reply({ type: 'heapSnapshot', path: writeHeapSnapshot(message.path) });
        return;
      case 'stop':
        void stop();
        return;
    }
  });
  reply({ type: 'ready', port: server.port, path: server.path, fdLimit: descriptorLimit() });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
