/**
 * One node of the storm bench, on a fixed port so a restarted node comes back where its clients
 * reconnect: a Pulse node (PostgreSQL store + Redis bus, shared with the publisher and the other
 * node) or a Socket.IO server. Usage: `node --import tsx src/storm-node.ts '<json options>'`.
 */
import { createServer } from 'node:http';
import {
  type NodeCommand,
  type NodeReply,
  nowMs,
  type StormNodeOptions,
  stormEvent,
} from './storm-shared.js';

const reply = (message: NodeReply) => process.send?.(message);

interface StormNode {
  drain(graceMs: number): Promise<void>;
  publish(seq: number): void;
  stats(): { connections: number; subscriptions: number };
  close(): Promise<void>;
}

async function startPulse(opts: StormNodeOptions): Promise<StormNode> {
  const { startPulseServer } = await import('@pulse/server');
  const secret = process.env.BENCH_SECRET;
  if (!secret) throw new Error('BENCH_SECRET is not set');
  const server = await startPulseServer({
    config: {
      port: opts.port,
      host: '127.0.0.1',
      logLevel: 'silent',
      nodeId: opts.nodeId,
      jwt: { secret },
      databaseUrl: opts.databaseUrl,
      redisUrl: opts.redisUrl,
      redisPrefix: opts.redisPrefix,
      // NOTE: every bench client comes from 127.0.0.1; the per-IP limit of sockets awaiting their
      // token (100 by default) is meant for distinct clients, so it is raised. No other limit changes.
      limits: { maxUnauthenticatedPerIp: 1_000_000 },
    },
  });
  return {
    // Pulse's graceful stop: the tRPC `reconnect` notice to every socket, wait up to graceMs for
    // them to leave, then close the rest with 1001.
    drain: (graceMs) => server.close({ graceMs }),
    publish() {
      throw new Error('Pulse events come from the publisher process');
    },
    stats: () => {
      const t = server.stats().transport;
      return { connections: t.connections, subscriptions: t.subscriptions };
    },
    close: () => server.close({ graceMs: 0 }),
  };
}

async function startSocketIo(opts: StormNodeOptions): Promise<StormNode> {
  const { Server } = await import('socket.io');
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => {
    void socket.join(opts.workspaceId);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return {
    async drain() {
      throw new Error('Socket.IO has no drain notice');
    },
    publish(seq) {
      io.to(opts.workspaceId).emit('update', stormEvent(seq));
    },
    stats: () => ({ connections: io.engine.clientsCount, subscriptions: io.engine.clientsCount }),
    async close() {
      io.disconnectSockets(true);
      await io.close();
    },
  };
}

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as StormNodeOptions;
  const node = opts.kind === 'pulse' ? await startPulse(opts) : await startSocketIo(opts);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.race([node.close(), new Promise((resolve) => setTimeout(resolve, 3000))]);
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('message', (message: NodeCommand) => {
    switch (message.cmd) {
      case 'publish':
        node.publish(message.seq);
        reply({ type: 'emitted', seq: message.seq });
        return;
      case 'drain': {
        stopping = true;
        const started = nowMs();
        void node
          .drain(message.graceMs)
          .then(() => reply({ type: 'drained', ms: nowMs() - started }))
          .catch((error: Error) => reply({ type: 'error', message: `drain: ${error.message}` }))
          .finally(() => setTimeout(() => process.exit(0), 100));
        return;
      }
      case 'stats':
        reply({ type: 'stats', ...node.stats() });
        return;
      case 'stop':
        void stop();
        return;
    }
  });
  reply({ type: 'ready', port: opts.port });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
