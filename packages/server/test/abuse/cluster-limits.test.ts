import type { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/router.js';
import {
  connectWsOnly,
  startTestServer,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
} from '../support/vitest.js';

const down = (await redisUnavailable()) ?? (await postgresUnavailable());

describe('abuse: rate limits across nodes', () => {
  it.skipIf(down)(
    'with Redis, a user cannot multiply the per-user limit by spreading over nodes',
    async () => {
      await using db = await createTestDatabase();
      const config = {
        databaseUrl: db.url,
        redisUrl: REDIS_URL,
        redisPrefix: uniquePrefix(),
        limits: { rateLimitPerSec: 50, rateLimitBurst: 100, rateLimitUserPerSec: 3, rateLimitUserBurst: 6 },
      };
      await using a = await startTestServer({ config: { ...config, nodeId: 'node-a' } });
      await using b = await startTestServer({ config: { ...config, nodeId: 'node-b' } });
      const token = await a.token({ sub: 'bob', workspaces: { acme: 'member' } });
      await using onA = connectWsOnly(a.wsUrl, token);
      await using onB = connectWsOnly(b.wsUrl, token);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? onA : onB).trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' }),
        ),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const codes = new Set(
        results.flatMap((r) =>
          r.status === 'rejected' ? [(r.reason as TRPCClientError<AppRouter>).data?.code] : [],
        ),
      );
      // One shared budget of 6 (+1 if a second ticks over), not 6 per node.
      expect(ok).toBeGreaterThanOrEqual(6);
      expect(ok).toBeLessThanOrEqual(7);
      expect(codes).toEqual(new Set(['TOO_MANY_REQUESTS']));
      await onA.close();
      await onB.close();
    },
  );
});
