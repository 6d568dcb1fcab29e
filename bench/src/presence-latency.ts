/**
 * `npm run bench:presence -w @pulse/bench`: how long a presence change takes to reach another
 * client (official tRPC client over the socket, one real Pulse node on embedded parts). Prints
 * p50 / p99 / max over ROUNDS changes; not part of `npm test`.
 */
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import type { AppRouter } from '@pulse/server';
import { startTestServer } from '@pulse/server/testing';
import WebSocket from 'ws';

const ROUNDS = Number(process.env.ROUNDS ?? 200);
const server = await startTestServer({
  config: {
    // One change at a time, measured end to end: lift presence.set's per-user rate limit for the run.
    limits: {
      presenceRatePerSec: 1_000,
      presenceBurst: 1_000,
      rateLimitPerSec: 1_000,
      rateLimitBurst: 1_000,
      rateLimitUserPerSec: 1_000,
      rateLimitUserBurst: 1_000,
    },
  },
});
const client = async (sub: string) => {
  const token = await server.token({ sub, workspaces: { acme: 'member' } });
  const ws = createWSClient({
    url: server.wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
  });
  return { ws, trpc: createTRPCClient<AppRouter>({ links: [wsLink({ client: ws })] }) };
};
const watcher = await client('alice');
const mover = await client('bob');
const waiting = new Map<string, (at: number) => void>();
await new Promise<void>((ready) => {
  watcher.trpc.presence.onChange.subscribe(
    { workspaceId: 'acme' },
    {
      onData: (event) => {
        if (event.type === 'snapshot') ready();
        if (event.type === 'join' || event.type === 'update')
          waiting.get(event.user.page ?? '')?.(performance.now());
      },
    },
  );
});
const samples: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const page = `/page/${i}`;
  const seen = new Promise<number>((resolve) => waiting.set(page, resolve));
  const start = performance.now();
  await mover.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page });
  samples.push((await seen) - start);
  waiting.delete(page);
}
samples.sort((a, b) => a - b);
const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(2);
console.log(
  `presence change -> other client, ${ROUNDS} rounds over one socket each: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${samples.at(-1)!.toFixed(2)} ms`,
);
await watcher.ws.close();
await mover.ws.close();
await server.close({ graceMs: 0 });
