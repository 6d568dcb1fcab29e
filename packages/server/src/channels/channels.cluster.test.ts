import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import {
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
} from '../../test/support/vitest.js';
import { mintToken } from '../auth/token.js';
import { createPublisher } from '../publisher-process.js';
import { pulseRouters } from '../router.js';
import { startPulseServer } from '../server.js';
import { router } from '../trpc.js';
import { defineChannel } from './channel.js';
import { channelRouter } from './channels.router.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());
const SECRET = 'channels-cluster-secret-long-enough-for-hs256-0123456789';

const comments = defineChannel({
  name: 'comments',
  input: z.object({ postId: z.string() }),
  event: z.object({ text: z.string() }),
  durable: true,
});
const appRouter = router({ ...pulseRouters, channels: channelRouter([comments]) });

describe.skipIf(unavailable)('channels across processes (PostgreSQL + Redis)', () => {
  it('a publisher process and another node publish; subscribers on both nodes get every event once, in order', async () => {
    await using db = await createTestDatabase();
    const redisPrefix = uniquePrefix();
    const config = {
      port: 0,
      logLevel: 'silent' as const,
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      redisPrefix,
      jwt: { secret: SECRET },
    };
    const nodes = [
      await startPulseServer({ router: appRouter, config: { ...config, nodeId: 'n1' } }),
      await startPulseServer({ router: appRouter, config: { ...config, nodeId: 'n2' } }),
    ];
    const publisher = await createPublisher({
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      redisPrefix,
      channels: [comments],
    });
    const clients: Array<{ close(): void }> = [];
    try {
      const token = await mintToken({ secret: SECRET }, { sub: 'alice', workspaces: { acme: 'member' } });
      const seen = nodes.map(
        () => [] as Array<{ id: string; data: { type: string; data?: { text: string } } }>,
      );
      for (const [i, node] of nodes.entries()) {
        const ws = createWSClient({
          url: node.wsUrl,
          WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
          connectionParams: { token },
        });
        clients.push(ws);
        const trpc = createTRPCClient<typeof appRouter>({ links: [wsLink({ client: ws })] });
        trpc.channels.comments.subscribe.subscribe(
          { workspaceId: 'acme', input: { postId: 'p1' } },
          { onData: (item) => seen[i]?.push(item as (typeof seen)[number][number]) },
        );
      }
      await vi.waitFor(() => {
        for (const list of seen) expect(list[0]?.data.type).toBe('sync');
      });
      expect(
        await publisher.channel(comments, {
          workspaceId: 'acme',
          input: { postId: 'p1' },
          event: { text: 'from the worker' },
          idempotencyKey: 'job-1',
        }),
      ).toEqual({ id: '1', created: true });
      // A retried job: same key, same sender (system) → nothing new.
      expect(
        await publisher.channel(comments, {
          workspaceId: 'acme',
          input: { postId: 'p1' },
          event: { text: 'from the worker' },
          idempotencyKey: 'job-1',
        }),
      ).toEqual({ id: '1', created: false });
      await nodes[1]?.channels.publish(comments, {
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { text: 'from node 2' },
      });
      await vi.waitFor(() => {
        for (const list of seen) {
          expect(list.filter((i) => i.data.type === 'event').map((i) => [i.id, i.data.data?.text])).toEqual([
            ['1', 'from the worker'],
            ['2', 'from node 2'],
          ]);
        }
      });
    } finally {
      for (const client of clients) client.close();
      await publisher.close();
      for (const node of nodes) await node.close({ graceMs: 0 });
    }
  });
});
