import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  splitLink,
  type TRPCClient,
  wsLink,
} from '@trpc/client';
import WebSocket from 'ws';
import type { NotificationEvent } from '../../src/notifications/notifications.schema.js';
import type { AppRouter } from '../../src/router.js';
import type { PulseServer } from '../../src/server.js';
import type { NodeProcess } from './cluster.js';

/**
 * The server tests' own helpers that need devDependencies (the official tRPC client, vitest):
 * not part of `@pulse/server/testing`.
 */

export interface TestClient extends AsyncDisposable {
  trpc: TRPCClient<AppRouter>;
  close(): Promise<void>;
}

/** A real tRPC client (official wsLink over `ws`, httpBatchLink over fetch). */
export function connectClient(
  server: Pick<PulseServer, 'url' | 'wsUrl'>,
  token: string | (() => Promise<string>),
  opts: { retryDelayMs?: (attempt: number) => number; onClose?: (cause?: { code?: number }) => void } = {},
): TestClient {
  const getToken = async () => (typeof token === 'string' ? token : token());
  const wsClient = createWSClient({
    url: server.wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: async () => ({ token: await getToken() }),
    retryDelayMs: opts.retryDelayMs ?? (() => 50),
    onClose: opts.onClose,
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: wsClient }),
        false: httpBatchLink({
          url: `${server.url}/trpc`,
          headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
        }),
      }),
    ],
  });
  const close = () => wsClient.close();
  return { trpc, close, [Symbol.asyncDispose]: close };
}

/** A durable stream's `sync` event (its head, sent first to a subscription without lastEventId). */
export function isSyncEvent(item: unknown): boolean {
  const data = (item as { data?: { type?: unknown } } | null)?.data;
  return data?.type === 'sync';
}

/**
 * Collects what a subscription yields, with its errors. `items` leaves out durable streams' `sync`
 * bookkeeping event (it only hands the client its resume point); `all` keeps everything.
 */
export function collect<T>() {
  const items: T[] = [];
  const all: T[] = [];
  const errors: unknown[] = [];
  return {
    items,
    all,
    errors,
    onData: (item: T) => {
      all.push(item);
      if (!isSyncEvent(item)) items.push(item);
    },
    onError: (error: unknown) => {
      errors.push(error);
    },
  };
}

/** Resolves after `ms` (only to prove something does NOT happen within a window). */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client whose every call goes over the socket (presence set over ws is bound to that socket). */
export function connectWsOnly(url: string, token: string | (() => Promise<string>)): TestClient {
  const client = createWSClient({
    url,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: async () => ({ token: typeof token === 'string' ? token : await token() }),
    retryDelayMs: () => 50,
  });
  const close = () => client.close();
  return {
    trpc: createTRPCClient<AppRouter>({ links: [wsLink({ client })] }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Resolves once each durable subscription is live: its `sync` (the stream head) has arrived.
 * Events committed before that are history (for `list`); every later one arrives live.
 */
export async function synced(...collectors: Array<{ all: unknown[] }>): Promise<void> {
  const { vi, expect } = await import('vitest');
  await vi.waitFor(() => {
    for (const c of collectors) expect(c.all.some(isSyncEvent)).toBe(true);
  });
}

/**
 * A real client (official wsLink, every call over the socket) that starts on `nodes[first]` and,
 * whenever it (re)connects, picks the first node still running from there: what a client behind a
 * load balancer sees when its node dies.
 */
export function connectToCluster(nodes: NodeProcess[], first: number, token: string): TestClient {
  const alive = (n: NodeProcess) => n.child.exitCode === null && n.child.signalCode === null;
  const client = createWSClient({
    url: () => {
      for (let i = 0; i < nodes.length; i++) {
        const node = nodes[(first + i) % nodes.length]!;
        if (alive(node)) return node.wsUrl;
      }
      return nodes[first]!.wsUrl;
    },
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: async () => ({ token }),
    retryDelayMs: () => 100,
  });
  const close = () => client.close();
  return {
    trpc: createTRPCClient<AppRouter>({ links: [wsLink({ client })] }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Ids of tracked items, as received. */
export const idsOf = (items: Array<{ id: string }>) => items.map((item) => item.id);

/** "1".."n" */
export const range = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

/** What the official client hands `onData` for a tracked notification event. */
export interface Tracked {
  id: string;
  data: NotificationEvent;
}
