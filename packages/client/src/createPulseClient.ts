import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  splitLink,
  type TRPCClient,
  TRPCClientError,
  type TRPCLink,
  wsLink,
} from '@trpc/client';
import type { AppRouter } from '@pulse/server/contract';
import type { AnyTRPCRouter } from '@trpc/server';
import { observable } from '@trpc/server/observable';
// NOTE: the server's browser-safe protocol constants (no Node imports); the build inlines them, so
// the published client has no runtime dependency on @pulse/server.
import { CloseCode, TRY_AGAIN_LATER_RETRY_MS } from '@pulse/server/protocol';
import { PulseError } from './errors.js';
import { canShareConnection, subjectOfToken, TabGroup, type TabRole } from './tab-leader.js';

/** Any WebSocket class with the browser's API: the global one, or `ws`'s in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

/** A token, or a function returning a fresh one (called on every (re)connect and HTTP request). */
export type TokenSource = string | (() => string | Promise<string>);

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface ConnectionState {
  status: ConnectionStatus;
  /** The last connection error (a refused token, a dropped socket), cleared once connected. */
  error: PulseError | null;
  /** Reconnect attempts since the last successful connection. */
  attempt: number;
  /**
   * `leader`: this tab holds the socket its other tabs share; `follower`: it uses another tab's
   * socket (status and error are the leader's); `solo`: its own socket, nothing shared.
   */
  role: TabRole;
}

/**
 * Options of `createPulseClient`. `TRouter` is the router the server serves (default: Pulse's own);
 * an app that composes its own (`router({ ...pulseRouters, posts })`) passes its type.
 */
export interface PulseClientOptions<TRouter extends AnyTRPCRouter = AppRouter> {
  /**
   * Base URL of a Pulse node, e.g. `http://localhost:3001` (`ws(s)://…/trpc` is derived), or several
   * nodes' URLs: the first is picked at random, a failed connection moves to the next, each URL keeps
   * its own backoff, and HTTP requests go to the URL of the current socket.
   */
  url: string | readonly string[];
  token: TokenSource;
  /** WebSocket implementation (Node 20 has none built in: pass `WebSocket` from `ws`, no cast needed). */
  WebSocket?: WebSocketConstructor;
  /** Backoff: base and cap in ms for full-jitter reconnect delays (defaults 500 ms / 30 s). */
  retry?: { baseMs?: number; maxMs?: number; random?: () => number };
  /**
   * Give up a socket that has not opened within this many ms and try again (default 10,000; 0 = wait
   * for the browser or the OS to give up). tRPC's wsClient has no open timeout of its own: an open
   * stuck behind a full accept queue, or on a node that accepts TCP but never answers the upgrade,
   * would otherwise hold the client for minutes (TCP retransmits) or for good.
   */
  openTimeoutMs?: number;
  /** Client keep-alive: ping every `intervalMs`, reconnect if no pong in `pongTimeoutMs`. */
  keepAlive?: { intervalMs?: number; pongTimeoutMs?: number };
  /** Extra tRPC links placed before the transport links (logging, etc.). */
  links?: TRPCLink<TRouter>[];
  /**
   * Mutation paths sent over the WebSocket instead of HTTP, e.g. `['presence.set', 'presence.typing']`:
   * presence set over the socket lives exactly as long as that socket (no TTL expiry, gone on close).
   */
  wsMutations?: readonly string[];
  /** After a refused token, how long a new socket must stay open to count as connected (ms, default 1000). */
  authConfirmMs?: number;
  /**
   * Open no socket until `connect()` or the first WebSocket operation (default false: connect at
   * once). `<PulseProvider>` creates its client lazily during render and connects it once mounted,
   * so a render React discards, or one on the server (SSR), never opens a socket.
   */
  lazy?: boolean;
  fetch?: typeof globalThis.fetch;
  /**
   * Share one WebSocket among this origin's tabs of the same user (default true; browsers with Web
   * Locks and BroadcastChannel only, never in Node). One tab leads and holds the socket, the others
   * send their subscriptions and socket mutations through it. `false`: every tab connects itself.
   */
  shareConnection?: boolean;
  /**
   * Which user the tabs are shared for (default: the token's `sub` claim, read without verifying).
   * Tabs of different users never share a socket.
   */
  userKey?: string;
  /**
   * While sharing: a follower tab that hears nothing from the leader tab for this long (ms, default
   * 5000) takes the lead from it and connects — a leader the browser froze or whose page hangs.
   * The old leader, once it runs again, finds it lost the lock, closes its socket unused and follows.
   * `0` turns it off (then only a leader that closes or crashes hands over).
   */
  stealAfterMs?: number;
}

/** A connected Pulse client, typed with the router `TRouter` the server serves. */
export interface PulseClient<TRouter extends AnyTRPCRouter = AppRouter> {
  /** The typed tRPC client: `client.trpc.presence.list.query({ workspaceId })`. */
  readonly trpc: TRPCClient<TRouter>;
  /**
   * The transport links. Do not build a second TRPCClient over them: request ids are numbered per
   * TRPCClient and two clients on one socket collide. Pass `trpc` itself to `@trpc/react-query`.
   */
  readonly links: TRPCLink<TRouter>[];
  /** Current connection state. */
  getConnectionState(): ConnectionState;
  /** Called on every connection state change; returns an unsubscribe function. */
  onConnectionState(listener: (state: ConnectionState) => void): () => void;
  /**
   * The tab group this client shares its socket with (null when not sharing): lets tabs share
   * small flags, e.g. whether any tab is visible and active (presence uses it for `away`).
   */
  readonly tabs: TabGroup | null;
  /** Opens the socket now if it is not open yet (a `lazy` client); a no-op once closed. */
  connect(): void;
  /** Closes the socket and stops reconnecting. */
  close(): Promise<void>;
}

/**
 * Full-jitter exponential backoff: a random delay in [0, min(cap, base·2^attempt)], so a restart
 * does not bring every client back in the same second.
 */
export function fullJitterBackoff(opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}) {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const random = opts.random ?? Math.random;
  return (attempt: number) => Math.floor(random() * Math.min(max, base * 2 ** Math.min(attempt, 20)));
}

interface OpeningSocket {
  readonly readyState: number;
  close(): void;
  addEventListener(type: 'open' | 'close', listener: () => void): void;
}

/**
 * `Base` whose sockets close themselves when still connecting after `ms`: closing a connecting
 * socket fires `error` then `close` (browsers and `ws` alike), which is what tRPC's wsClient retries
 * on, with Pulse's backoff. `Base` itself when there is none (the wsClient then says so) or `ms` is 0.
 */
function withOpenTimeout(
  Base: WebSocketConstructor | undefined,
  ms: number,
): WebSocketConstructor | undefined {
  if (!Base || !(ms > 0)) return Base;
  const Opening = Base as new (url: string, protocols?: string | string[]) => OpeningSocket;
  return class TimedWebSocket extends Opening {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      const timer = setTimeout(() => {
        if (this.readyState === 0) this.close();
      }, ms);
      const clear = () => clearTimeout(timer);
      this.addEventListener('open', clear);
      this.addEventListener('close', clear);
    }
  };
}

const closeMessages: Record<number, string> = {
  [CloseCode.unauthorized]: 'Token refused or expired',
  [CloseCode.authTimeout]: 'Authentication timed out',
  [CloseCode.tooManyConnections]: 'Too many connections',
  [CloseCode.slowConsumer]: 'Connection too slow; resuming',
  [CloseCode.goingAway]: 'Server restarting',
};

/**
 * Creates a typed Pulse client: queries and mutations over HTTP, subscriptions over one WebSocket
 * that reconnects with full-jitter backoff, re-reads the token on every reconnect and resumes
 * durable streams from the last event id.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws';
 * const pulse = createPulseClient({ url: 'http://localhost:3001', token: () => auth.getToken(), WebSocket });
 * pulse.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, { onData: (e) => console.log(e) });
 * await pulse.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });
 * ```
 */
export function createPulseClient<TRouter extends AnyTRPCRouter = AppRouter>(
  opts: PulseClientOptions<TRouter>,
): PulseClient<TRouter> {
  const bases = (typeof opts.url === 'string' ? [opts.url] : [...opts.url]).map((u) => u.replace(/\/+$/, ''));
  if (bases.length === 0) throw new Error('createPulseClient: url must name at least one node');
  const random = opts.retry?.random ?? Math.random;
  let current = Math.floor(random() * bases.length) % bases.length;
  // NOTE: failed attempts per URL since it last connected (its own backoff).
  const failures = bases.map(() => 0);
  const baseOf = () => bases[current]!;
  const wsUrlOf = (base: string) => `${base.replace(/^http/, 'ws')}/trpc`;
  const wsUrl = wsUrlOf(bases[0]!);
  let lastCloseCode: number | undefined;
  // NOTE: whether the socket opened since the last retry: a retry after an attempt that never
  // opened counts as that URL's failure and moves to the next URL.
  let openedSinceRetry = false;
  const readToken = async () => (typeof opts.token === 'function' ? await opts.token() : opts.token);
  const getToken = async () => {
    const token = await readToken();
    group?.offerToken(token);
    return token;
  };
  // NOTE: the socket's token: a leader may use a fresher one another tab of the same user read.
  const socketToken = async () => {
    const tabs = group;
    if (!tabs) return getToken();
    const own = await getToken().catch((error: unknown) => {
      if (tabs.tokenForSocket(null) === null) throw error;
      return null;
    });
    return tabs.tokenForSocket(own) ?? own!;
  };

  const sharing = opts.shareConnection !== false && canShareConnection();
  let group: TabGroup | null = null;
  let state: ConnectionState = { status: 'connecting', error: null, attempt: 0, role: 'solo' };
  // NOTE: while sharing, `state` is what this tab shows (the leader's state in a follower), and
  // `socketState` is this tab's own socket, which the tab group reports while it leads.
  let socketState: ConnectionState = state;
  const socketListeners = new Set<(s: ConnectionState) => void>();
  const listeners = new Set<(s: ConnectionState) => void>();
  const publish = (next: Partial<ConnectionState>) => {
    state = { ...state, ...next };
    for (const listener of listeners) listener(state);
  };
  const setState = (next: Partial<ConnectionState>) => {
    if (!sharing) return publish(next);
    socketState = { ...socketState, ...next };
    for (const listener of socketListeners) listener(socketState);
  };
  let closed = false;
  let everConnected = false;
  let authConfirm: ReturnType<typeof setTimeout> | undefined;

  const backoff = fullJitterBackoff(opts.retry);
  const openSocket = () =>
    createWSClient({
      url: () => wsUrlOf(baseOf()),
      // NOTE: `ws`'s class speaks the same API as the browser's; tRPC only types the browser one.
      WebSocket: withOpenTimeout(opts.WebSocket ?? globalThis.WebSocket, opts.openTimeoutMs ?? 10_000) as
        | typeof globalThis.WebSocket
        | undefined,
      connectionParams: async () => ({ token: await socketToken() }),
      retryDelayMs: (attempt) => {
        setState({ status: 'reconnecting', attempt: attempt + 1 });
        // NOTE: attempt 0 follows a close or a `reconnect` notice: full jitter from the first try.
        const shed = lastCloseCode === CloseCode.tryAgainLater;
        lastCloseCode = undefined;
        if (!openedSinceRetry) {
          failures[current] = (failures[current] ?? 0) + 1;
          if (bases.length > 1) current = (current + 1) % bases.length;
        }
        openedSinceRetry = false;
        const delay = backoff(bases.length > 1 ? (failures[current] ?? 0) : attempt);
        // NOTE: a shed socket (1013) waits the server's hint, plus full jitter over the same span.
        return shed
          ? TRY_AGAIN_LATER_RETRY_MS + Math.floor(random() * TRY_AGAIN_LATER_RETRY_MS) + delay
          : delay;
      },
      keepAlive: {
        enabled: true,
        intervalMs: opts.keepAlive?.intervalMs ?? 15_000,
        pongTimeoutMs: opts.keepAlive?.pongTimeoutMs ?? 5_000,
      },
      onOpen: () => {
        clearTimeout(authConfirm);
        failures[current] = 0;
        openedSinceRetry = true;
        // NOTE: the socket opens before the server has checked the token (it closes with 4401 right
        // after). After a refused token, only call it connected once the socket survived a moment, so
        // status and error do not flap connected/refused on every retry.
        if (state.error?.context.type === 'AUTH') {
          authConfirm = setTimeout(() => {
            everConnected = true;
            setState({ status: 'connected', error: null, attempt: 0 });
          }, opts.authConfirmMs ?? 1_000);
          return;
        }
        everConnected = true;
        setState({ status: 'connected', error: null, attempt: 0 });
      },
      onClose: (cause) => {
        clearTimeout(authConfirm);
        if (closed) {
          setState({ status: 'offline' });
          return;
        }
        const code = cause?.code;
        lastCloseCode = code;
        const error =
          code === undefined || code === 1000 || code === 1005
            ? state.error
            : new PulseError(
                code === CloseCode.unauthorized
                  ? { type: 'AUTH', code: 'UNAUTHORIZED', message: closeMessages[code]! }
                  : {
                      type: 'CONNECTION',
                      code: 'CLOSED',
                      message: closeMessages[code] ?? `Socket closed (${code})`,
                      closeCode: code,
                    },
              );
        setState({ status: everConnected ? 'reconnecting' : 'connecting', error });
      },
    });
  let wsClient: ReturnType<typeof createWSClient> | null = null;
  const ensureSocket = () => {
    wsClient ??= openSocket();
    return wsClient;
  };
  group = sharing
    ? new TabGroup({
        wsUrl,
        userKey: async () => opts.userKey ?? subjectOfToken(await getToken()) ?? 'anonymous',
        socket: ensureSocket,
        closeSocket: async () => {
          const socket = wsClient;
          wsClient = null;
          await socket?.close();
        },
        localState: () => socketState,
        onLocalState: (listener) => {
          socketListeners.add(listener);
          return () => socketListeners.delete(listener);
        },
        setState: publish,
        abandonSocket: () => {
          const socket = wsClient;
          wsClient = null;
          // NOTE: the raw socket closes first, so finishing the tRPC client sends nothing on it
          // (no `subscription.stop`: the server drops that socket's subscriptions itself).
          const raw = socket?.connection?.ws;
          if (raw && raw.readyState !== raw.CLOSED) raw.close();
          return socket;
        },
        stealAfterMs: opts.stealAfterMs ?? 5_000,
      })
    : null;
  if (!opts.lazy) {
    if (group) void group.start();
    else ensureSocket();
  }
  // NOTE: the wsLink is built on the first WebSocket operation, so a lazy client's socket opens only
  // then (or at `connect()`); after `close()` an operation fails instead of opening a new socket.
  const lazyWsLink: TRPCLink<AppRouter> = (runtime) => {
    let link: ReturnType<TRPCLink<AppRouter>> | null = null;
    return (ctx) => {
      if (closed && !wsClient)
        return observable((observer) => {
          observer.error(TRPCClientError.from(new Error('Pulse client is closed')));
        });
      link ??= wsLink<AppRouter>({ client: ensureSocket() })(runtime);
      return link(ctx);
    };
  };

  const wsMutations = new Set(opts.wsMutations ?? []);
  // NOTE: the links only route operations (by type and path); the router type is the caller's.
  const links: TRPCLink<AppRouter>[] = [
    ...((opts.links ?? []) as unknown as TRPCLink<AppRouter>[]),
    splitLink({
      condition: (op) => op.type === 'subscription' || (op.type === 'mutation' && wsMutations.has(op.path)),
      true: group ? group.link : lazyWsLink,
      false: httpBatchLink<AppRouter>({
        url: `${bases[0]}/trpc`,
        // NOTE: HTTP follows the node the socket is on (httpBatchLink takes one URL: rewrite it).
        fetch: (input, init) => {
          const doFetch = opts.fetch ?? globalThis.fetch;
          const target = String(input instanceof Request ? input.url : input);
          const rewritten = target.startsWith(bases[0]!) ? baseOf() + target.slice(bases[0]!.length) : target;
          return doFetch(rewritten, init);
        },
        headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
      }),
    }),
  ];

  const client: PulseClient<AppRouter> = {
    trpc: createTRPCClient<AppRouter>({ links }),
    links,
    getConnectionState: () => state,
    onConnectionState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    tabs: group,
    connect() {
      if (closed) return;
      if (group) void group.start();
      else ensureSocket();
    },
    async close() {
      closed = true;
      clearTimeout(authConfirm);
      await group?.close();
      await wsClient?.close();
      publish({ status: 'offline' });
    },
  };
  return client as unknown as PulseClient<TRouter>;
}
