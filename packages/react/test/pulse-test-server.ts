import { createPulseClient, type PulseClient } from '@pulse/client';
import { type MintOptions, mintToken, type PulseConfigInput, startPulseServer } from '@pulse/server';
import WebSocket from 'ws';

export const TEST_SECRET = 'react-sdk-test-secret-long-enough-for-hs256-0123456789';

/** A real Pulse node on port 0 with an in-memory SQLite store; `await using` stops it. */
export async function startServer(config: PulseConfigInput = {}) {
  const server = await startPulseServer({
    sqliteFile: ':memory:',
    config: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      ...config,
      jwt: { secret: TEST_SECRET },
      presence: { graceMs: 100, ttlMs: 2_000, typingTtlMs: 1_000, ...config.presence },
    },
  });
  return Object.assign(server, {
    token: (opts: MintOptions) => mintToken(server.config.jwt, opts),
    [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }),
  });
}

/** Node's `ws` as the WHATWG WebSocket the client expects. */
export const NodeWebSocket = WebSocket as unknown as typeof globalThis.WebSocket;

/** Client options for tests: the `ws` socket and quick reconnects. */
export const fastClientOptions = {
  WebSocket: NodeWebSocket,
  retry: { baseMs: 20, maxMs: 200 },
} as const;

/** A Pulse client a test owns (e.g. an admin sending notifications). */
export function testClient(url: string, token: string): PulseClient & AsyncDisposable {
  const client = createPulseClient({ url, token, ...fastClientOptions });
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.close() });
}
