/**
 * The opener of the accept bench: on `go`, opens `m` new connections to one server as fast as it
 * can with at most `concurrency` handshakes in flight, each doing what a real client of that
 * protocol does before it is useful, and reports per connection the time from `new WebSocket` to
 * accepted. Accepted sockets stay open (they are new users, not probes).
 * Usage: `node --import tsx src/accept-client.ts '<json options>'` (the runner pins it to a core).
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type ClientProtocol, nowMs } from './shared.js';

export interface AcceptClientOptions {
  protocol: ClientProtocol;
  /** `ws://127.0.0.1:port/path` */
  url: string;
  /** New connections to open. */
  m: number;
  /** Handshakes in flight at most. */
  concurrency: number;
  /** First user number (distinct from the idle subscribers'). */
  offset: number;
  workspaceId: string;
  /** tRPC procedure of the first subscription (`trpc`). */
  procedure?: string;
  secret?: string;
  /**
   * Loopback source addresses to spread the connections over (127.0.0.1 … 127.0.0.k): real
   * clients come from many addresses, and Pulse caps unauthenticated sockets per address.
   */
  sourceAddresses: number;
}

/** Runner -> opener. */
export type AcceptClientCommand = { cmd: 'go' } | { cmd: 'stop' };

/** Opener -> runner. */
export type AcceptClientReply =
  | { type: 'primed' }
  | {
      type: 'result';
      accepted: number;
      failed: number;
      /** First `new WebSocket` to last accepted, ms. */
      wallMs: number;
      /** Time to accepted of each accepted connection, ms. */
      times: number[];
      /** Size of the frame that completed the last accepted connection (Pulse: its snapshot / sync). */
      lastFrameBytes: number;
      /** First failure reasons (at most 5). */
      reasons: string[];
      cpuMicros: number;
    }
  | { type: 'error'; message: string };

const reply = (message: AcceptClientReply) => process.send?.(message);
const TIMEOUT_MS = 30_000;

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as AcceptClientOptions;
  const sockets: WebSocket[] = [];
  const tokens: string[] = [];
  if (opts.protocol === 'trpc') {
    // NOTE: signed before the timed window: token minting is the identity provider's cost.
    const key = new TextEncoder().encode(opts.secret);
    for (let i = 0; i < opts.m; i++) {
      const user = opts.offset + i;
      tokens.push(
        await new SignJWT({ name: `Bench ${user}`, workspaces: { [opts.workspaceId]: 'member' } })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject(`u${user}`)
          .setExpirationTime('2h')
          .sign(key),
      );
    }
  }
  const url =
    opts.protocol === 'trpc'
      ? `${opts.url}?connectionParams=1`
      : opts.protocol === 'socketio'
        ? `${opts.url}?EIO=4&transport=websocket`
        : opts.url;
  const reasons: string[] = [];
  let lastFrameBytes = 0;

  /** One connection, resolved with its time to accepted (ms) or null. */
  const open = (index: number) =>
    new Promise<number | null>((resolve) => {
      const startedAt = nowMs();
      let settled = false;
      const socket = new WebSocket(url, {
        perMessageDeflate: false,
        localAddress: `127.0.0.${1 + (index % opts.sourceAddresses)}`,
      });
      sockets.push(socket);
      const settle = (ok: boolean, reason?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!ok) {
          if (reason && reasons.length < 5) reasons.push(reason);
          socket.terminate();
        }
        resolve(ok ? nowMs() - startedAt : null);
      };
      const timer = setTimeout(() => settle(false, 'timeout'), TIMEOUT_MS);
      socket.on('error', (error) => settle(false, error.message));
      socket.on('close', (code) => settle(false, `closed ${code}`));
      socket.on('open', () => {
        if (opts.protocol === 'ws') socket.send('hello');
        else if (opts.protocol === 'trpc') {
          socket.send(JSON.stringify({ method: 'connectionParams', data: { token: tokens[index] } }));
          socket.send(
            JSON.stringify({
              id: 1,
              method: 'subscription',
              params: { path: opts.procedure, input: { workspaceId: opts.workspaceId } },
            }),
          );
        }
      });
      socket.on('message', (data: Buffer) => {
        if (opts.protocol === 'ws') {
          settle(data.toString() === 'hello', 'bad echo');
        } else if (opts.protocol === 'socketio') {
          // Engine.IO v4: 0 open, 2 ping; Socket.IO v5 inside `4`: 0 CONNECT, 3 ACK.
          if (data[0] === 0x30) socket.send('40');
          else if (data[0] === 0x32) socket.send('3');
          else if (data[0] === 0x34 && data[1] === 0x30) socket.send(`420["join","${opts.workspaceId}"]`);
          else if (data[0] === 0x34 && data[1] === 0x33) settle(true);
          else settle(false, `unexpected ${data.toString().slice(0, 80)}`);
        } else {
          if (data.length === 4 && data.toString() === 'PING') {
            socket.send('PONG');
            return;
          }
          const text = data.toString();
          if (text.includes('"error"')) settle(false, text.slice(0, 200));
          // The first data frame: the dashboard's snapshot, the notification stream's sync.
          else if (text.includes('"type":"data"')) {
            lastFrameBytes = data.length;
            settle(true);
          }
        }
      });
    });

  const run = async () => {
    const times: number[] = [];
    let failed = 0;
    let next = 0;
    let lastAt = 0;
    const cpuBefore = process.cpuUsage();
    const firstAt = nowMs();
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency, opts.m) }, async () => {
        while (next < opts.m) {
          const time = await open(next++);
          if (time === null) failed += 1;
          else {
            times.push(time);
            lastAt = nowMs();
          }
        }
      }),
    );
    const cpu = process.cpuUsage(cpuBefore);
    reply({
      type: 'result',
      accepted: times.length,
      failed,
      wallMs: (times.length > 0 ? lastAt : nowMs()) - firstAt,
      times,
      reasons,
      lastFrameBytes,
      cpuMicros: cpu.user + cpu.system,
    });
  };

  process.on('message', (message: AcceptClientCommand) => {
    if (message.cmd === 'go') {
      run().catch((error: Error) => reply({ type: 'error', message: error.stack ?? error.message }));
    } else if (message.cmd === 'stop') {
      for (const socket of sockets) socket.terminate();
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => {
    for (const socket of sockets) socket.terminate();
    process.exit(0);
  });
  reply({ type: 'primed' });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
