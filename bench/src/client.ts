/**
 * A load client process: opens `count` sockets to one server, subscribes each the way the lightest
 * honest client of that protocol would, and reports, per event, when every one of its sockets had
 * it. Usage: `node --import tsx src/client.ts '<json options>'` (the runner pins it to a core).
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { type ClientCommand, type ClientProtocol, type ClientReply, nowMs, SEQ_MARKER } from './shared.js';

export interface ClientOptions {
  protocol: ClientProtocol;
  /** `ws://127.0.0.1:port/path` */
  url: string;
  count: number;
  /** First subscriber number of this process (user ids and subscription ids stay distinct). */
  offset: number;
  workspaceId: string;
  /** tRPC procedure path and input for `trpc` clients. */
  procedure?: string;
  /** Input fields beside `workspaceId` (a channel's topic key). */
  procedureInput?: Record<string, unknown>;
  secret?: string;
  deflate?: boolean;
  /**
   * Source address of every socket (127.0.0.2, 127.0.0.3…): one loopback source address has
   * ~28,000 ephemeral ports towards one server port, fewer than a 50,000-socket run needs.
   */
  localAddress?: string;
}

const reply = (message: ClientReply) => process.send?.(message);
const MARKER = Buffer.from(SEQ_MARKER);
const CONCURRENCY = 64;

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as ClientOptions;
  const sockets: WebSocket[] = [];
  const lastEventIds: Array<string | undefined> = [];
  const pending = new Map<number, { count: number; times: number[] | null }>();
  let subscribed = 0;
  let received = 0;
  let errors = 0;
  let closed = 0;
  let recording = false;
  let trackedIds = 0;
  let firstError: string | undefined;

  const onEvent = (seq: number) => {
    received += 1;
    let entry = pending.get(seq);
    if (!entry) {
      entry = { count: 0, times: recording ? [] : null };
      pending.set(seq, entry);
    }
    entry.count += 1;
    entry.times?.push(nowMs());
    if (entry.count >= subscribed - closed) {
      pending.delete(seq);
      reply({ type: 'done', seq, times: entry.times });
    }
  };

  const seqOf = (data: Buffer): number => {
    const at = data.indexOf(MARKER);
    if (at < 0) return -1;
    let seq = 0;
    for (let i = at + MARKER.length; i < data.length; i++) {
      const digit = data[i]! - 48;
      if (digit < 0 || digit > 9) break;
      seq = seq * 10 + digit;
    }
    return seq;
  };

  const tokens: string[] = [];
  if (opts.protocol === 'trpc') {
    const key = new TextEncoder().encode(opts.secret);
    for (let i = 0; i < opts.count; i++) {
      tokens.push(
        await new SignJWT({ name: `Bench ${opts.offset + i}`, workspaces: { [opts.workspaceId]: 'member' } })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject(`u${opts.offset + i}`)
          .setExpirationTime('2h')
          .sign(key),
      );
    }
  }

  const open = (index: number) =>
    new Promise<boolean>((resolve) => {
      let settled = false;
      let wasSubscribed = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        wasSubscribed = ok;
        if (ok) subscribed += 1;
        resolve(ok);
      };
      const url =
        opts.protocol === 'trpc'
          ? `${opts.url}?connectionParams=1`
          : opts.protocol === 'socketio'
            ? `${opts.url}?EIO=4&transport=websocket`
            : opts.url;
      const socket = new WebSocket(url, {
        perMessageDeflate: opts.deflate === true,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      });
      sockets[index] = socket;
      const timer = setTimeout(() => {
        firstError ??= 'not subscribed within 30 s';
        socket.terminate();
        settle(false);
      }, 30_000);
      socket.on('error', (error) => {
        firstError ??= error.message;
        settle(false);
      });
      socket.on('close', (code) => {
        clearTimeout(timer);
        // NOTE: only a subscribed socket that closes counts (the per-event completion waits for
        // `subscribed - closed`); a failed connect's close came after its error and is not one.
        if (wasSubscribed) closed += 1;
        else if (!settled) firstError ??= `closed before subscribed (code ${code})`;
        settle(false);
      });
      const subId = opts.offset + index + 1;
      socket.on('open', () => {
        if (opts.protocol === 'ws') {
          clearTimeout(timer);
          settle(true);
        } else if (opts.protocol === 'trpc') {
          socket.send(JSON.stringify({ method: 'connectionParams', data: { token: tokens[index] } }));
          socket.send(
            JSON.stringify({
              id: subId,
              method: 'subscription',
              params: {
                path: opts.procedure,
                input: { workspaceId: opts.workspaceId, ...opts.procedureInput },
              },
            }),
          );
        }
      });
      socket.on('message', (data: Buffer) => {
        if (opts.protocol === 'ws') {
          const seq = seqOf(data);
          if (seq >= 0) onEvent(seq);
        } else if (opts.protocol === 'socketio') {
          // Engine.IO v4 over WebSocket: 0 open, 2 ping, 3 pong, 4 message (+ Socket.IO type).
          const kind = data[0];
          if (kind === 0x34 /* 4 */) {
            if (data[1] === 0x32 /* 2: EVENT */) {
              const seq = seqOf(data);
              if (seq >= 0) onEvent(seq);
            } else if (data[1] === 0x30 /* 0: CONNECT */) {
              clearTimeout(timer);
              settle(true);
            } else errors += 1;
          } else if (kind === 0x32) socket.send('3');
          else if (kind === 0x30) socket.send('40');
        } else {
          // tRPC wire format: PING keep-alive, {id,result:{type:started|data|stopped}} or {id,error}.
          if (data.length === 4 && data.toString() === 'PING') {
            socket.send('PONG');
            return;
          }
          const seq = seqOf(data);
          if (seq >= 0) {
            // Resumable streams carry `tracked` ids: remember the last one, as wsLink does.
            const at = data.lastIndexOf('"id":"');
            if (at >= 0) {
              const end = data.indexOf(0x22, at + 6);
              lastEventIds[index] = data.toString('latin1', at + 6, end);
              trackedIds += 1;
            }
            onEvent(seq);
            return;
          }
          const text = data.toString();
          if (text.includes('"error"')) {
            errors += 1;
            if (errors <= 3) console.error(`[client] error frame: ${text.slice(0, 300)}`);
            settle(false);
          } else if (text.includes('"type":"started"')) {
            clearTimeout(timer);
            settle(true);
          }
        }
      });
    });

  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, opts.count) }, async () => {
      while (next < opts.count) {
        const index = next++;
        if (!(await open(index))) failed += 1;
      }
    }),
  );
  reply({ type: 'ready', sockets: subscribed, failed, ...(firstError ? { firstError } : {}) });

  process.on('message', (message: ClientCommand) => {
    if (message.cmd === 'record') recording = message.on;
    else if (message.cmd === 'counts') {
      const cpu = process.cpuUsage();
      reply({
        type: 'counts',
        received,
        errors,
        closed,
        cpuMicros: cpu.user + cpu.system,
        trackedIds,
      });
    } else if (message.cmd === 'stop') {
      for (const socket of sockets) socket?.terminate();
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => {
    for (const socket of sockets) socket?.terminate();
    process.exit(0);
  });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
