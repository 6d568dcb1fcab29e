import {
  createPulseClient,
  type PulseClient,
  type PulseClientOptions,
  type TokenSource,
} from '@pulse/client';
import { QueryClient, QueryClientContext, QueryClientProvider } from '@tanstack/react-query';
import type { TRPCClient } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import type { AppRouter } from '@pulse/client';
import { createContext, type ReactNode, useContext, useEffect, useRef, useSyncExternalStore } from 'react';
import { PresenceReporter } from './presence-reporter.js';
import { SubscriptionRegistry } from './shared-subscription.js';
import { trpc } from './trpc.js';
import { type Viewer, viewerFromToken } from './viewer.js';

/** Mutations the SDK sends over the socket: presence set there lives exactly as long as the socket. */
export const WS_MUTATIONS = ['presence.set', 'presence.leave', 'presence.typing'] as const;

export interface PulseProviderProps {
  /**
   * Base URL of a Pulse node, e.g. `https://pulse.example.com` (the socket is `wss://…/trpc`). Read
   * once: to switch servers, remount the provider (`key={url}`).
   */
  url?: string;
  /** A JWT, or a function returning a fresh one (called on every reconnect and HTTP request). */
  token?: TokenSource;
  /**
   * The QueryClient Pulse's queries live in. Default: your app's, when the provider is inside your
   * `<QueryClientProvider>` (so Pulse's and your queries share one cache and your defaults);
   * otherwise one the provider creates. Passing one here also provides it to the children.
   */
  queryClient?: QueryClient;
  /**
   * Use your Pulse client (then `url`/`token` are ignored and the provider never closes it), typed
   * with your router or Pulse's: `createPulseClient<AppRouter>(…)`.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a client of any router that includes Pulse's
  client?: PulseClient<any>;
  /** Options passed to `createPulseClient` when the provider creates the client. */
  clientOptions?: Omit<PulseClientOptions, 'url' | 'token'>;
  /** Default idle time (ms) before the viewer is shown `away`; hooks may override. Default 60 s. */
  idleMs?: number;
  children?: ReactNode;
}

interface Owned {
  client: PulseClient;
  ownsClient: boolean;
  /** Created on first need: only when neither a prop nor the app provides a QueryClient. */
  ownQueryClient?: QueryClient;
  trpcClient: TRPCClient<AppRouter>;
  context: PulseContextValue;
  /** Stops every presence reporter (timers, DOM listeners). */
  dispose(): void;
  closeTimer?: ReturnType<typeof setTimeout>;
}

/** What the hooks reach through context. */
export interface PulseContextValue {
  client: PulseClient;
  /** The viewer as read from the latest token (null until a token was read). */
  viewer: ViewerStore;
  /** The shared presence reporter of one workspace. */
  presenceReporter(workspaceId: string): PresenceReporter;
  /** One server subscription per procedure and input, shared by every hook below the provider. */
  subscriptions: SubscriptionRegistry;
  defaultIdleMs: number;
}

/** A tiny external store for the viewer (who the token belongs to). */
export class ViewerStore {
  private viewer: Viewer | null = null;
  private readonly listeners = new Set<() => void>();
  set(viewer: Viewer | null) {
    if (viewer?.userId === this.viewer?.userId && viewer?.name === this.viewer?.name) return;
    this.viewer = viewer;
    for (const listener of this.listeners) listener();
  }
  get = (): Viewer | null => this.viewer;
  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

const PulseContext = createContext<PulseContextValue | null>(null);

function createOwned(props: PulseProviderProps, tokenRef: { current: TokenSource | undefined }): Owned {
  const viewer = new ViewerStore();
  // NOTE: the hooks use Pulse's own procedures only, which every such router includes.
  let client = props.client as PulseClient | undefined;
  const ownsClient = !client;
  if (!client) {
    if (!props.url || props.token === undefined)
      throw new Error('<PulseProvider> needs either `client` or both `url` and `token`');
    client = createPulseClient({
      ...props.clientOptions,
      // NOTE: created during render, so it must not connect here: a render React discards (StrictMode,
      // Suspense) or one on the server would leak a socket. The mount effect connects it.
      lazy: true,
      url: props.url,
      wsMutations: [...WS_MUTATIONS, ...(props.clientOptions?.wsMutations ?? [])],
      // NOTE: read through a ref, so a new `token` prop (a refreshed string) is used at the next
      // reconnect or request without tearing the socket down.
      token: async () => {
        const token = tokenRef.current!;
        const value = typeof token === 'function' ? await token() : token;
        viewer.set(viewerFromToken(value));
        return value;
      },
    });
  } else if (typeof props.token === 'string') {
    viewer.set(viewerFromToken(props.token));
  }
  const pulse = client;
  const reporters = new Map<string, PresenceReporter>();
  const defaultIdleMs = props.idleMs ?? 60_000;
  const context: PulseContextValue = {
    client: pulse,
    viewer,
    defaultIdleMs,
    subscriptions: new SubscriptionRegistry(),
    presenceReporter(workspaceId) {
      let reporter = reporters.get(workspaceId);
      if (!reporter) {
        reporter = new PresenceReporter({
          workspaceId,
          idleMs: defaultIdleMs,
          connection: pulse,
          send: (input) => pulse.trpc.presence.set.mutate(input),
          leave: (id) => pulse.trpc.presence.leave.mutate({ workspaceId: id }),
        });
        reporters.set(workspaceId, reporter);
      }
      return reporter;
    },
  };
  return {
    client: pulse,
    ownsClient,
    // NOTE: the React bindings must use the client's own TRPCClient: a second client over the same
    // links would number its requests from 1 again and collide with the first on the shared socket.
    trpcClient: pulse.trpc,
    context,
    dispose: () => {
      for (const reporter of reporters.values()) reporter.dispose();
      reporters.clear();
    },
  };
}

/**
 * Owns one Pulse client (one WebSocket), or uses yours, and makes every Pulse hook available below
 * it. The socket opens when the provider mounts, never during render (so not on the server, nor in
 * a render React throws away) and closes on unmount if the provider created the client;
 * StrictMode's simulated unmount/remount keeps the same socket. Queries go to your app's
 * QueryClient when there is one (see `queryClient`).
 *
 * @example
 * ```tsx
 * <PulseProvider url="https://pulse.example.com" token={() => auth.getAccessToken()}>
 *   <App />
 * </PulseProvider>
 * ```
 */
export function PulseProvider(props: PulseProviderProps) {
  const owned = useRef<Owned | null>(null);
  const tokenRef = useRef(props.token);
  tokenRef.current = props.token;
  // NOTE: created during render (not in an effect) so children render on the first pass, but lazy:
  // a discarded render leaves only garbage (no socket, no timer). The effect below connects it, and
  // its deferred close survives StrictMode's simulated unmount/remount, so one socket exists.
  owned.current ??= createOwned(props, tokenRef);
  const current = owned.current;
  const appQueryClient = useContext(QueryClientContext);
  if (!props.queryClient && !appQueryClient && !current.ownQueryClient)
    current.ownQueryClient = new QueryClient({
      defaultOptions: { queries: { staleTime: 30_000, refetchOnWindowFocus: false } },
    });
  const queryClient = props.queryClient ?? appQueryClient ?? current.ownQueryClient!;

  useEffect(() => {
    clearTimeout(current.closeTimer);
    if (current.ownsClient) current.client.connect();
    return () => {
      current.closeTimer = setTimeout(() => {
        if (owned.current === current) owned.current = null;
        current.dispose();
        if (current.ownsClient) void current.client.close();
      }, 0);
    };
  }, [current]);

  return (
    <PulseContext.Provider value={current.context}>
      <trpc.Provider client={current.trpcClient} queryClient={queryClient}>
        {queryClient === appQueryClient ? (
          props.children
        ) : (
          <QueryClientProvider client={queryClient}>{props.children}</QueryClientProvider>
        )}
      </trpc.Provider>
    </PulseContext.Provider>
  );
}

/** The Pulse context; throws a clear error outside `<PulseProvider>` (a programming error). */
export function usePulseContext(): PulseContextValue {
  const value = useContext(PulseContext);
  if (!value) throw new Error('Pulse hooks must be used inside <PulseProvider>');
  return value;
}

/**
 * The Pulse client of the nearest `<PulseProvider>` (for imperative calls).
 *
 * @example
 * ```tsx
 * const pulse = usePulseClient();
 * await pulse.trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' });
 * // the app's own procedures, typed with its router (the type the provider's client was made with):
 * const post = await usePulseClient<AppRouter>().trpc.posts.get.query({ workspaceId, postId });
 * ```
 */
export function usePulseClient<TRouter extends AnyTRPCRouter = AppRouter>(): PulseClient<TRouter> {
  return usePulseContext().client as unknown as PulseClient<TRouter>;
}

/**
 * Who the current token belongs to (`sub` and `name` claims), or null before the first token read.
 *
 * @example
 * ```tsx
 * const viewer = useViewer();
 * return <span>Signed in as {viewer?.name}</span>;
 * ```
 */
export function useViewer(): Viewer | null {
  const { viewer } = usePulseContext();
  return useSyncExternalStore(viewer.subscribe, viewer.get, viewer.get);
}
