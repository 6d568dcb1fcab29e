/**
 * Type test (checked by `tsc`, run by `npm run typecheck`): `createPulseClient<AppRouter>()` types
 * an app's own procedures end to end, beside Pulse's. Never executed.
 */
import { memberProcedure, pulseRouters, router } from '@pulse/server';
import WebSocket from 'ws';
import { z } from 'zod';
import { createPulseClient, type PulseClient } from '../src/index.js';

const appRouter = router({
  ...pulseRouters,
  posts: router({
    get: memberProcedure
      .input(z.object({ workspaceId: z.string(), postId: z.string() }))
      .query(({ input }) => ({ id: input.postId, title: 'Spring campaign', likes: 3 })),
  }),
});
type AppRouter = typeof appRouter;

export async function typed() {
  const pulse = createPulseClient<AppRouter>({ url: 'http://localhost:3001', token: 't', WebSocket });
  const post = await pulse.trpc.posts.get.query({ workspaceId: 'acme', postId: 'p1' });
  const likes: number = post.likes;
  // @ts-expect-error — the app's procedure checks its input: postId is required
  await pulse.trpc.posts.get.query({ workspaceId: 'acme' });
  // @ts-expect-error — and its output: there is no `shares`
  post.shares;
  // Pulse's own procedures are still there, typed as before.
  const list = await pulse.trpc.presence.list.query({ workspaceId: 'acme' });
  const first: string | undefined = list[0]?.userId;

  // Without the type argument the client knows Pulse's router only.
  const plain: PulseClient = createPulseClient({ url: 'http://localhost:3001', token: 't', WebSocket });
  // @ts-expect-error — no `posts` on Pulse's own router
  plain.trpc.posts;
  return { likes, first };
}
