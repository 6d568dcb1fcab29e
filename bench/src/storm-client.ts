/**
 * The storm's load clients: `count` light clients in one process, each one socket and one
 * subscription, reconnecting the way the real clients do.
 *
 * - `trpc`: tRPC 11's wsLink/wsClient reconnect (node_modules/@trpc/client, wsClient.ts) with
 *   @pulse/client's `retryDelayMs` (packages/client/src/createPulseClient.ts): on a close, an error
 *   or a `reconnect` notice, wait `retryDelayMs(attempt)`, close the old socket, open a new one,
 *   send `connectionParams`, then resend the subscription with `lastEventId` = the last tracked id
 *   received; a failed open retries with attempt + 1. The delay is full jitter, random() ×
 *   min(30 s, 500 ms × 2^attempt); with several URLs a retry after an attempt that never opened
 *   moves to the next URL and each URL keeps its own failure count. A socket's close event always
 *   calls reconnect (a no-op while one is under way), as wsClient does. Keep-alive pings are not
 *   sent (events arrive every few hundred ms, so wsLink would not send any either).
 * - `socketio`: socket.io-client 4.8's Manager defaults: reconnection on, delay 1 s, max 5 s,
 *   randomization 0.5, factor 2, attempts unlimited (the first attempt after a close also waits
 *   one delay), an open abandoned after `timeout` (20 s); Engine.IO v4 over WebSocket only (`transports: ['websocket']`), then the Socket.IO
 *   v5 CONNECT to `/`. No replay: Socket.IO has none.
 *
 * Every event's seq is counted per client, so lost (never seen) and duplicated (seen twice) are
 * exact. Usage: `node --import tsx src/storm-client.ts '<json options>'`.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { CloseCode, TRY_AGAIN_LATER_RETRY_MS } from '@pulse/server/protocol';
import {
  type ClientCommand,
  type ClientReply,
  nowMs,
  STORM_MARKER,
  type StormClientOptions,
} from './storm-shared.js';

const reply = (message: ClientReply) => process.send?.(message);
const MARKER = Buffer.from(STORM_MARKER);
const ID_KEY = Buffer.from('"id":"');
const DATA_KEY = Buffer.from('"type":"data"');
const CONCURRENCY = 64;
const PROCEDURE = 'notifications.onNotification';

const opts = JSON.parse(process.argv[2] ?? '{}') as StormClientOptions;
const multi = opts.urls.length > 1;
let armed = false;
let stopping = false;
let errors = 0;
let reopened = 0;
let failedAttempts = 0;
/** seen[i * maxSeq + seq]: how often client i got event seq (saturates at 255). */
const seen = new Uint8Array(opts.count * (opts.maxSeq + 1));
const traceStart = nowMs();
/** STORM_TRACE=3: the first 3 clients of each process log their reconnect timeline. */
const traced = Number(process.env.STORM_TRACE ?? 0);
const trace = (c: { index: number }, what: string) => {
  if (armed && c.index < traced)
    console.log(`[trace ${opts.offset + c.index}] ${Math.round(nowMs() - traceStart)} ${what}`);
};

class Client {
  ws: WebSocket | null = null;
  /** Socket generation: events on a socket opened after the disconnect are the resume. */
  gen = 0;
  cur = 0;
  readonly failures: number[] = opts.urls.map(() => 0);
  openedSinceRetry = false;
  lastCloseCode: number | undefined;
  reconnecting = false;
  lastEventId: string | undefined;
  subscribed = false;
  disconnectAt = -1;
  disconnectGen = -1;
  resubscribeAt = -1;
  resumeAt = -1;
  /** Socket.IO: backoff attempts since the last successful reconnect. */
  sioAttempts = 0;
  onReady: ((ok: boolean) => void) | null = null;
  constructor(
    readonly index: number,
    readonly token: string | undefined,
  ) {}
}

function seqOf(data: Buffer): number {
  const at = data.indexOf(MARKER);
  if (at < 0) return -1;
  let seq = 0;
  for (let i = at + MARKER.length; i < data.length; i++) {
    const digit = data[i]! - 48;
    if (digit < 0 || digit > 9) break;
    seq = seq * 10 + digit;
  }
  return seq;
}

function countEvent(c: Client, seq: number) {
  if (seq < 0 || seq > opts.maxSeq) return;
  const k = c.index * (opts.maxSeq + 1) + seq;
  if (seen[k]! < 255) seen[k]! += 1;
}

function markDisconnect(c: Client) {
  if (armed && c.disconnectAt < 0) {
    c.disconnectAt = nowMs();
    c.disconnectGen = c.gen;
  }
}

function markEvent(c: Client, gen: number) {
  if (c.resumeAt < 0 && c.disconnectAt >= 0 && gen > c.disconnectGen) trace(c, `first event gen ${gen}`);
  if (c.disconnectAt >= 0 && c.resumeAt < 0 && gen > c.disconnectGen) c.resumeAt = nowMs();
}

function markSubscribed(c: Client, gen: number) {
  c.subscribed = true;
  if (c.disconnectAt >= 0 && c.resubscribeAt < 0 && gen > c.disconnectGen) c.resubscribeAt = nowMs();
  c.onReady?.(true);
  c.onReady = null;
}

/** Opens a socket; resolves once it is open, rejects if it closes or fails before. */
function openSocket(
  c: Client,
  url: string,
  onMessage: (ws: WebSocket, gen: number, data: Buffer) => void,
  openTimeoutMs?: number,
) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    c.ws = ws;
    const gen = ++c.gen;
    let opened = false;
    // socket.io-client's Manager `timeout` (20 s): an open that takes longer is abandoned and retried.
    const timer = openTimeoutMs
      ? setTimeout(() => {
          if (!opened) ws.terminate();
        }, openTimeoutMs)
      : undefined;
    ws.on('open', () => {
      clearTimeout(timer);
      trace(c, `open ${url}`);
      opened = true;
      reopened += armed ? 1 : 0;
      resolve(ws);
    });
    ws.on('message', (data: Buffer) => onMessage(ws, gen, data));
    ws.on('error', (error: Error) => {
      trace(c, `error ${error.message}`);
      if (!opened) {
        if (armed) failedAttempts += 1;
        reject(new Error('open failed'));
      }
    });
    ws.on('close', (code: number) => {
      clearTimeout(timer);
      trace(c, `close ${code} gen ${gen}`);
      if (c.ws === ws) {
        c.ws = null;
        c.subscribed = false;
      }
      if (!opened) {
        reject(new Error('closed before open'));
        return;
      }
      onSocketClose(c, code);
    });
  });
}

let onSocketClose: (c: Client, code: number) => void = () => {};

// ---------------------------------------------------------------------------------------------
// tRPC wsLink + @pulse/client
// ---------------------------------------------------------------------------------------------

const random = Math.random;
const backoff = (attempt: number) =>
  Math.floor(random() * Math.min(30_000, 500 * 2 ** Math.min(attempt, 20)));

function pulseRetryDelayMs(c: Client, attempt: number): number {
  const shed = c.lastCloseCode === CloseCode.tryAgainLater;
  c.lastCloseCode = undefined;
  if (!c.openedSinceRetry) {
    c.failures[c.cur] = (c.failures[c.cur] ?? 0) + 1;
    if (multi) c.cur = (c.cur + 1) % opts.urls.length;
  }
  c.openedSinceRetry = false;
  const delay = backoff(multi ? (c.failures[c.cur] ?? 0) : attempt);
  return shed ? TRY_AGAIN_LATER_RETRY_MS + Math.floor(random() * TRY_AGAIN_LATER_RETRY_MS) + delay : delay;
}

function trpcMessage(c: Client, ws: WebSocket, gen: number, data: Buffer) {
  if (data.length === 4 && data.toString() === 'PING') {
    ws.send('PONG');
    return;
  }
  if (data.indexOf(DATA_KEY) >= 0) {
    // The tracked id is the envelope's last "id" (`…,"id":"<eventId>"}}`).
    const at = data.lastIndexOf(ID_KEY);
    if (at >= 0)
      c.lastEventId = data.toString('latin1', at + ID_KEY.length, data.indexOf(0x22, at + ID_KEY.length));
    countEvent(c, seqOf(data));
    markEvent(c, gen);
    return;
  }
  const text = data.toString();
  if (text.includes('"method":"reconnect"')) {
    trace(c, 'reconnect notice');
    trpcReconnect(c);
  } else if (text.includes('"type":"started"')) {
    trace(c, `started gen ${gen}`);
    markSubscribed(c, gen);
  } else if (text.includes('"error"') || text.includes('"type":"stopped"')) {
    errors += 1;
    if (errors <= 3) console.error(`[storm-client] ${text.slice(0, 300)}`);
    c.onReady?.(false);
    c.onReady = null;
  }
}

async function trpcOpen(c: Client) {
  const ws = await openSocket(
    c,
    `${opts.urls[c.cur]}?connectionParams=1`,
    (s, g, d) => trpcMessage(c, s, g, d),
    opts.pulseOpenTimeoutMs,
  );
  // wsClient's onOpen callback: the Pulse client resets this URL's failures.
  c.failures[c.cur] = 0;
  c.openedSinceRetry = true;
  ws.send(JSON.stringify({ method: 'connectionParams', data: { token: c.token } }));
  // The pending subscription, resent with the last tracked id as wsClient does.
  ws.send(
    JSON.stringify({
      id: c.index + 1 + opts.offset,
      method: 'subscription',
      params: { input: { workspaceId: opts.workspaceId }, path: PROCEDURE, lastEventId: c.lastEventId },
    }),
  );
}

function trpcReconnect(c: Client) {
  markDisconnect(c);
  if (c.reconnecting || stopping) return;
  c.reconnecting = true;
  const attemptOnce = (attempt: number) => {
    const delay = pulseRetryDelayMs(c, attempt);
    trace(c, `attempt ${attempt} in ${delay} ms to ${opts.urls[c.cur]}`);
    setTimeout(() => {
      if (stopping) return;
      // wsClient closes the active connection (the old socket, if still open), then opens a new one.
      if (c.ws && c.ws.readyState === WebSocket.OPEN) c.ws.close();
      trpcOpen(c).then(
        () => {
          c.reconnecting = false;
        },
        () => attemptOnce(attempt + 1),
      );
    }, delay);
  };
  attemptOnce(0);
}

// ---------------------------------------------------------------------------------------------
// socket.io-client Manager defaults
// ---------------------------------------------------------------------------------------------

/** socket.io-client's backoff: 1000 × 2^attempts, ± up to 50% (sign from the same draw), max 5 s. */
function sioDelay(c: Client): number {
  const ms = 1000 * 2 ** c.sioAttempts++;
  const rand = random();
  const deviation = Math.floor(rand * 0.5 * ms);
  const jittered = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
  return Math.min(jittered, 5000) | 0;
}

function sioMessage(c: Client, ws: WebSocket, gen: number, data: Buffer) {
  const kind = data[0];
  if (kind === 0x34 /* 4 message */) {
    if (data[1] === 0x32 /* 2 EVENT */) {
      countEvent(c, seqOf(data));
      markEvent(c, gen);
    } else if (data[1] === 0x30 /* 0 CONNECT */) {
      c.sioAttempts = 0;
      markSubscribed(c, gen);
    } else errors += 1;
  } else if (kind === 0x32 /* 2 ping */) ws.send('3');
  else if (kind === 0x30 /* 0 open */) ws.send('40');
}

function sioOpen(c: Client) {
  return openSocket(
    c,
    `${opts.urls[c.cur]}?EIO=4&transport=websocket`,
    (s, g, d) => sioMessage(c, s, g, d),
    20_000,
  );
}

function sioReconnect(c: Client) {
  markDisconnect(c);
  if (c.reconnecting || stopping) return;
  // Manager.onclose resets the backoff, then reconnect() draws the first delay.
  c.sioAttempts = 0;
  c.reconnecting = true;
  const attemptOnce = () => {
    setTimeout(() => {
      if (stopping) return;
      sioOpen(c).then(
        () => {
          c.reconnecting = false;
        },
        () => attemptOnce(),
      );
    }, sioDelay(c));
  };
  attemptOnce();
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const clients: Client[] = [];
  const key = opts.secret ? new TextEncoder().encode(opts.secret) : null;
  for (let i = 0; i < opts.count; i++) {
    const user = opts.offset + i;
    const token = key
      ? await new SignJWT({ name: `Storm ${user}`, workspaces: { [opts.workspaceId]: 'member' } })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject(`u${user}`)
          .setExpirationTime('2h')
          .sign(key)
      : undefined;
    clients.push(new Client(i, token));
  }
  const trpc = opts.protocol === 'trpc';
  onSocketClose = (c, code) => {
    c.lastCloseCode = code;
    if (trpc) trpcReconnect(c);
    else sioReconnect(c);
  };

  // Initial connections, `CONCURRENCY` at a time; each waits for its subscription's `started`.
  let next = 0;
  let connected = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, opts.count) }, async () => {
      while (next < opts.count) {
        const c = clients[next++]!;
        const ok = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 30_000);
          c.onReady = (value) => {
            clearTimeout(timer);
            resolve(value);
          };
          (trpc ? trpcOpen(c) : sioOpen(c)).catch(() => resolve(false));
        });
        if (ok) connected += 1;
        else failed += 1;
      }
    }),
  );
  reply({ type: 'ready', connected, failed });

  const stride = opts.maxSeq + 1;
  const hasAll = (i: number, last: number) => {
    for (let s = 1; s <= last; s++) if (seen[i * stride + s] === 0) return false;
    return true;
  };
  process.on('message', (message: ClientCommand) => {
    if (message.cmd === 'arm') {
      armed = true;
    } else if (message.cmd === 'progress') {
      let resumed = 0;
      let complete = 0;
      let subscribed = 0;
      for (const c of clients) {
        if (c.resumeAt >= 0) resumed += 1;
        if (c.subscribed) subscribed += 1;
        if (hasAll(c.index, message.last)) complete += 1;
      }
      reply({ type: 'progress', resumed, complete, subscribed });
    } else if (message.cmd === 'report') {
      let lost = 0;
      let clientsWithLoss = 0;
      let duplicated = 0;
      let lastResumeAt = 0;
      let firstDisconnectAt = Number.POSITIVE_INFINITY;
      let disconnected = 0;
      for (const c of clients) {
        let missing = 0;
        for (const s of message.published) if (seen[c.index * stride + s] === 0) missing += 1;
        for (let s = 1; s <= opts.maxSeq; s++) {
          const n = seen[c.index * stride + s]!;
          if (n > 1) duplicated += n - 1;
        }
        lost += missing;
        if (missing > 0) clientsWithLoss += 1;
        if (c.disconnectAt >= 0) {
          disconnected += 1;
          firstDisconnectAt = Math.min(firstDisconnectAt, c.disconnectAt);
        }
        if (c.resumeAt >= 0) lastResumeAt = Math.max(lastResumeAt, c.resumeAt);
      }
      const cpu = process.cpuUsage();
      reply({
        type: 'report',
        resubscribeMs: clients.map((c) =>
          c.disconnectAt >= 0 && c.resubscribeAt >= 0 ? c.resubscribeAt - c.disconnectAt : -1,
        ),
        resumeMs: clients.map((c) =>
          c.disconnectAt >= 0 && c.resumeAt >= 0 ? c.resumeAt - c.disconnectAt : -1,
        ),
        lastResumeAt,
        firstDisconnectAt,
        disconnected,
        lost,
        clientsWithLoss,
        duplicated,
        reopened,
        failedAttempts,
        errors,
        cpuMicros: cpu.user + cpu.system,
      });
    } else if (message.cmd === 'stop') {
      stopping = true;
      for (const c of clients) c.ws?.terminate();
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => {
    stopping = true;
    for (const c of clients) c.ws?.terminate();
    process.exit(0);
  });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
