import { createPulseClient, type PulseClient } from '@pulse/client';
import WebSocket from 'ws';
import type { Rng } from './prng.js';

/**
 * A client that is "online" in its workspace: presence set over its socket (it lives exactly as
 * long as that socket), set again after every reconnect, as an app does.
 */
export interface PresenceClient {
  user: string;
  workspaceId: string;
  client: PulseClient;
  sets: number;
  failures: number;
  close(): Promise<void>;
}

export function startPresenceClient(opts: {
  user: string;
  workspaceId: string;
  token: string;
  urls: string[];
  rng: Rng;
}): PresenceClient {
  const client = createPulseClient({
    url: opts.urls,
    token: opts.token,
    WebSocket,
    retry: { baseMs: 100, maxMs: 2_000, random: opts.rng },
    openTimeoutMs: 3_000,
    keepAlive: { intervalMs: 1_500, pongTimeoutMs: 1_500 },
    wsMutations: ['presence.set'],
  });
  let closed = false;
  const state: PresenceClient = {
    user: opts.user,
    workspaceId: opts.workspaceId,
    client,
    sets: 0,
    failures: 0,
    async close() {
      closed = true;
      off();
      await client.close();
    },
  };
  let generation = 0;
  const announce = async (gen: number) => {
    for (let attempt = 0; attempt < 20 && !closed && gen === generation; attempt++) {
      try {
        await client.trpc.presence.set.mutate({
          workspaceId: opts.workspaceId,
          status: 'online',
          page: '/chaos',
        });
        state.sets++;
        return;
      } catch {
        state.failures++;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  };
  const off = client.onConnectionState((s) => {
    if (s.status === 'connected') void announce(++generation);
    else generation++;
  });
  if (client.getConnectionState().status === 'connected') void announce(++generation);
  return state;
}
