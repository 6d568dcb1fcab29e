import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  splitLink,
  type TRPCClient,
  wsLink,
} from '@trpc/client';
import WebSocket from 'ws';
import { mintToken, type MintOptions } from '../src/auth/token.js';
import type { PulseConfigInput } from '../src/config.js';
import type { AppRouter } from '../src/router.js';
import { type PulseServer, type PulseServerOptions, startPulseServer } from '../src/server.js';

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** A real Pulse node on an ephemeral port with an in-memory SQLite store; `await using` closes it. */
export async function startTestServer(
  opts: Omit<PulseServerOptions, 'config'> & { config?: PulseConfigInput } = {},
): Promise<PulseServer & AsyncDisposable & { token(opts: MintOptions): Promise<string> }> {
  const config: PulseConfigInput = {
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    ...opts.config,
    jwt: { secret: TEST_SECRET, ...opts.config?.jwt },
    presence: { graceMs: 200, ttlMs: 2_000, typingTtlMs: 300, ...opts.config?.presence },
  };
  const server = await startPulseServer({ sqliteFile: ':memory:', ...opts, config });
  return Object.assign(server, {
    token: (o: MintOptions) => mintToken(server.config.jwt, o),
    [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }),
  });
}

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
