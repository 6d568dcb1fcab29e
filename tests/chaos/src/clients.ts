import { createPulseClient, type PulseClient } from '@pulse/client';
import WebSocket from 'ws';
import type { ChaosRouter } from './channel.js';
import type { Rng } from './prng.js';

/** One durable event as a client saw it. */
export interface Seen {
  id: string;
  type: string;
  notificationId?: string;
  workspaceId?: string;
  userId?: string | null;
  title?: string;
}

export interface Recorder {
  label: string;
  user: string;
  workspaceId: string;
  seen: Seen[];
  errors: string[];
}

interface Tracked {
  id: string;
  data: {
    type: string;
    workspaceId?: string;
    userId?: string | null;
    notification?: { id: string; workspaceId: string; userId: string | null; title: string };
  };
}

const toSeen = (e: Tracked): Seen => ({
  id: e.id,
  type: e.data.type,
  notificationId: e.data.notification?.id,
  workspaceId: e.data.notification?.workspaceId ?? e.data.workspaceId,
  userId: e.data.notification ? e.data.notification.userId : e.data.userId,
  title: e.data.notification?.title,
});

/** One event of the other domains as a client saw it (channel, inbox: durable ids; dashboard: values). */
export interface ExtraSeen {
  /** Durable id (channel, inbox); undefined for dashboard events. */
  id?: string;
  type: string;
  workspaceId?: string;
  /** Channel: the topic key; inbox: the conversation. */
  key?: string;
  /** Channel: the publish's idempotency key carried in the event. */
  pubKey?: string;
  /** Dashboard: the values the event carries (a snapshot's all, an update's one). */
  values?: Array<{ key: string; at: string; value: number; workspaceId: string }>;
}

/** A second subscription of an official client: the custom channel, the inbox or the dashboard. */
export interface ExtraSubscription {
  kind: 'channel' | 'inbox' | 'dashboard';
  /** Channel: the post whose topic it follows. */
  postId?: string;
  seen: ExtraSeen[];
  errors: string[];
  resubscribes: number;
  subscribed: boolean;
}

export interface OfficialClient extends Recorder {
  client: PulseClient<ChaosRouter>;
  extra: ExtraSubscription | null;
  /** Subscriptions restarted by the app after an error or completion (with the last id). */
  resubscribes: number;
  /** When each entry of `seen` arrived (epoch ms), index for index: delivery latency. */
  seenAt: number[];
  subscribed: boolean;
  close(): Promise<void>;
}

/**
 * An official client (`createPulseClient`, full-jitter backoff, keep-alive, several node URLs) with
 * one durable subscription from the stream's start; on an error it resubscribes from its last id,
 * as an app would (bounded).
 */
export function startOfficialClient(opts: {
  label: string;
  user: string;
  workspaceId: string;
  token: string;
  urls: string[];
  rng: Rng;
  extra?: { kind: ExtraSubscription['kind']; postId?: string };
}): OfficialClient {
  const client = createPulseClient<ChaosRouter>({
    url: opts.urls,
    token: opts.token,
    WebSocket,
    retry: { baseMs: 100, maxMs: 2_000, random: opts.rng },
    openTimeoutMs: 3_000,
    keepAlive: { intervalMs: 1_500, pongTimeoutMs: 1_500 },
  });
  let closed = false;
  const state: OfficialClient = {
    label: opts.label,
    user: opts.user,
    workspaceId: opts.workspaceId,
    seen: [],
    errors: [],
    client,
    resubscribes: 0,
    seenAt: [],
    subscribed: true,
    extra: opts.extra ? { ...opts.extra, seen: [], errors: [], resubscribes: 0, subscribed: true } : null,
    async close() {
      closed = true;
      unsubscribe();
      unsubscribeExtra();
      await client.close();
    },
  };
  let unsubscribeExtra = () => {};
  const extra = state.extra;
  if (extra) {
    const handlers = {
      onData: (e: unknown) => extra.seen.push(toExtraSeen(extra.kind, e)),
      onError: (error: unknown) => {
        extra.errors.push(String((error as Error)?.message ?? error));
        extraAgain();
      },
      onComplete: () => {
        if (!closed) extraAgain();
      },
    };
    // On an error the app resubscribes from its last durable id (the dashboard: a fresh snapshot).
    const subscribeExtra = (lastEventId: string) => {
      const ws = opts.workspaceId;
      const sub =
        extra.kind === 'channel'
          ? client.trpc.channels.chaosPosts.subscribe.subscribe(
              { workspaceId: ws, input: { postId: extra.postId! }, lastEventId },
              handlers,
            )
          : extra.kind === 'inbox'
            ? client.trpc.inbox.onEvent.subscribe({ workspaceId: ws, lastEventId }, handlers)
            : client.trpc.dashboard.onUpdate.subscribe({ workspaceId: ws }, handlers);
      unsubscribeExtra = () => sub.unsubscribe();
    };
    const extraAgain = () => {
      if (closed) return;
      if (extra.resubscribes >= 200) {
        extra.subscribed = false;
        return;
      }
      extra.resubscribes++;
      setTimeout(() => {
        if (closed) return;
        const last = [...extra.seen].reverse().find((e) => e.id !== undefined)?.id ?? '0';
        subscribeExtra(last);
      }, 250);
    };
    subscribeExtra('0');
  }
  let unsubscribe = () => {};
  const subscribe = (lastEventId: string) => {
    const sub = client.trpc.notifications.onNotification.subscribe(
      { workspaceId: opts.workspaceId, lastEventId },
      {
        onData: (e) => {
          state.seen.push(toSeen(e as unknown as Tracked));
          state.seenAt.push(Date.now());
        },
        onError: (error) => {
          state.errors.push(String((error as Error)?.message ?? error));
          again();
        },
        onComplete: () => {
          if (!closed) again();
        },
      },
    );
    unsubscribe = () => sub.unsubscribe();
  };
  const again = () => {
    if (closed) return;
    if (state.resubscribes >= 200) {
      state.subscribed = false;
      return;
    }
    state.resubscribes++;
    setTimeout(() => {
      if (closed) return;
      const last = state.seen.at(-1)?.id ?? '0';
      subscribe(last);
    }, 250);
  };
  subscribe('0');
  return state;
}

function toExtraSeen(kind: ExtraSubscription['kind'], raw: unknown): ExtraSeen {
  if (kind === 'dashboard') {
    const e = raw as {
      type: string;
      workspaceId: string;
      key?: string;
      at?: string;
      value?: number;
      updates?: Array<{ key: string; at: string; value: number; workspaceId: string }>;
    };
    const values =
      e.type === 'snapshot'
        ? (e.updates ?? []).map((u) => ({ key: u.key, at: u.at, value: u.value, workspaceId: u.workspaceId }))
        : [{ key: e.key!, at: e.at!, value: e.value!, workspaceId: e.workspaceId }];
    return { type: e.type, workspaceId: e.workspaceId, values };
  }
  const t = raw as {
    id: string;
    data: {
      type: string;
      workspaceId?: string;
      key?: string;
      conversationId?: string;
      data?: { pubKey?: string };
    };
  };
  return {
    id: t.id,
    type: t.data.type,
    workspaceId: t.data.workspaceId,
    key: kind === 'channel' ? t.data.key : t.data.conversationId,
    pubKey: t.data.data?.pubKey,
  };
}

/** Frames a raw client got for its subscription, and how its sockets ended. */
export interface RawClient extends Recorder {
  kind: 'slow' | 'silent' | 'storm';
  opened: number;
  closeCodes: Record<string, number>;
  stop(): Promise<void>;
}

const wsUrl = (base: string) => `${base.replace(/^http/, 'ws')}/trpc?connectionParams=1`;

/** Opens one raw socket; resolves when it closes (or after `maxMs`, closing it). */
function rawSession(
  url: string,
  opts: {
    token: string | null;
    workspaceId: string;
    onEvent: (e: Tracked) => void;
    onSocket?: (ws: WebSocket) => void;
    maxMs: number;
  },
): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl(url));
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(code);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish(-1);
    }, opts.maxMs);
    ws.on('error', () => {});
    ws.on('close', (code) => finish(code));
    ws.on('open', () => {
      if (opts.token === null) return; // silent: never authenticates
      ws.send(JSON.stringify({ method: 'connectionParams', data: { token: opts.token } }));
      ws.send(
        JSON.stringify({
          id: 1,
          method: 'subscription',
          params: {
            path: 'notifications.onNotification',
            input: { workspaceId: opts.workspaceId, lastEventId: '0' },
          },
        }),
      );
      opts.onSocket?.(ws);
    });
    ws.on('message', (raw) => {
      try {
        const m = JSON.parse(raw.toString()) as {
          result?: { type?: string; id?: string; data?: Tracked['data'] };
        };
        if (m.result?.type === 'data' && m.result.data)
          opts.onEvent({ id: String(m.result.id), data: m.result.data });
      } catch {
        // not JSON (pong): ignore
      }
    });
  });
}

/**
 * A raw-wire client that behaves badly, until `stop()` (every loop bounded):
 * - `slow`: subscribes and then stops reading its socket for seconds at a time;
 * - `silent`: opens sockets and never authenticates (the node must close them);
 * - `storm`: reconnects over and over, each socket living a few hundred ms.
 */
export function startRawClient(opts: {
  kind: RawClient['kind'];
  label: string;
  user: string;
  workspaceId: string;
  token: string;
  urls: string[];
  rng: Rng;
}): RawClient {
  let stopping = false;
  const current = new Set<WebSocket>();
  const state: RawClient = {
    kind: opts.kind,
    label: opts.label,
    user: opts.user,
    workspaceId: opts.workspaceId,
    seen: [],
    errors: [],
    opened: 0,
    closeCodes: {},
    async stop() {
      stopping = true;
      for (const ws of current) ws.terminate();
      await loop;
    },
  };
  const onEvent = (e: Tracked) => state.seen.push(toSeen(e));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const loop = (async () => {
    for (let i = 0; i < 10_000 && !stopping; i++) {
      const url = opts.rng.pick(opts.urls);
      state.opened++;
      const lifetime =
        opts.kind === 'storm'
          ? opts.rng.int(50, 500)
          : opts.kind === 'slow'
            ? opts.rng.int(5_000, 15_000)
            : 20_000;
      const code = await rawSession(url, {
        token: opts.kind === 'silent' ? null : opts.token,
        workspaceId: opts.workspaceId,
        onEvent,
        maxMs: lifetime,
        onSocket: (ws) => {
          current.add(ws);
          ws.on('close', () => current.delete(ws));
          if (opts.kind === 'slow') {
            // Stops reading for a while, reads again, stops again… (the node's send buffer fills).
            const tcp = (ws as unknown as { _socket: import('node:net').Socket })._socket;
            const flip = (paused: boolean, n: number) => {
              if (n <= 0 || ws.readyState !== WebSocket.OPEN) return;
              if (paused) tcp.pause();
              else tcp.resume();
              setTimeout(() => flip(!paused, n - 1), opts.rng.int(500, 3_000));
            };
            flip(true, 20);
          }
        },
      });
      state.closeCodes[code] = (state.closeCodes[code] ?? 0) + 1;
      if (!stopping) await sleep(opts.kind === 'storm' ? opts.rng.int(0, 100) : opts.rng.int(200, 1_000));
    }
  })();
  return state;
}

/** A burst: `count` raw sockets at once that authenticate, subscribe, live `holdMs`, then close. */
export async function connectionBurst(opts: {
  count: number;
  urls: string[];
  token: (i: number) => { token: string; workspaceId: string; user: string };
  holdMs: number;
  rng: Rng;
  record: (r: Recorder) => void;
}): Promise<{ closeCodes: Record<string, number> }> {
  const closeCodes: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: opts.count }, async (_, i) => {
      const who = opts.token(i);
      const rec: Recorder = {
        label: `burst-${i}`,
        user: who.user,
        workspaceId: who.workspaceId,
        seen: [],
        errors: [],
      };
      opts.record(rec);
      const code = await rawSession(opts.rng.pick(opts.urls), {
        token: who.token,
        workspaceId: who.workspaceId,
        onEvent: (e) => rec.seen.push(toSeen(e)),
        maxMs: opts.holdMs,
      });
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    }),
  );
  return { closeCodes };
}
