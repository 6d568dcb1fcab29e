import { createPulseClient } from '@pulse/client';
import { memberProcedure, pulseRouters, router } from '@pulse/server';
import { describe, expectTypeOf, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { PulseProvider, usePulseClient } from './index.js';

const appRouter = router({
  ...pulseRouters,
  posts: router({
    get: memberProcedure
      .input(z.object({ workspaceId: z.string(), postId: z.string() }))
      .query(({ input }) => ({ id: input.postId, likes: 3 })),
  }),
});
type AppRouter = typeof appRouter;

describe('a client typed with the app router', () => {
  it('goes into <PulseProvider client> and comes back typed from usePulseClient<AppRouter>()', () => {
    const client = createPulseClient<AppRouter>({
      url: 'http://localhost:3001',
      token: 't',
      WebSocket,
      lazy: true,
    });
    // The provider takes it as it is (no cast).
    const element = <PulseProvider url="http://localhost:3001" token="t" client={client} />;
    expectTypeOf(element).not.toBeAny();
    const typed = () => usePulseClient<AppRouter>();
    expectTypeOf<ReturnType<typeof typed>['trpc']['posts']['get']['query']>()
      .parameter(0)
      .toEqualTypeOf<{ workspaceId: string; postId: string }>();
    // @ts-expect-error — Pulse's own router has no `posts`
    usePulseClient().trpc.posts;
  });
});
