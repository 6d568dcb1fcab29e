import { createPulseClient, type PulseClient } from '@pulse/client';
import type { PulseConfigInput } from '@pulse/server';
import { startTestServer } from '@pulse/server/testing';
import WebSocket from 'ws';

/**
 * A real Pulse node (`@pulse/server/testing`'s `startTestServer`: port 0, in-memory SQLite, the
 * test secret) with the presence timers the SDK tests are written for; `await using` stops it.
 */
export function startServer(config: PulseConfigInput = {}) {
  return startTestServer({
    config: { ...config, presence: { graceMs: 100, ttlMs: 2_000, typingTtlMs: 1_000, ...config.presence } },
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

/** A test server (`startServer`). */
export type TestPulseServer = Awaited<ReturnType<typeof startServer>>;

/** A `mention` notification titled `title` to bob in acme, sent by the server itself. */
export function mentionBob(server: TestPulseServer, title: string) {
  return server.caller.notifications.send({
    workspaceId: 'acme',
    userId: 'bob',
    type: 'mention',
    title,
    data: { platform: 'x', author: '@fan', text: `about ${title}` },
  });
}
