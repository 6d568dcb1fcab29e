import { channelRouter, createPulseRouters, defineChannel, router } from '@pulse/server';
import { z } from 'zod';

/** Events kept per workspace: above what a run publishes, so a `reset` is a violation. */
export const CHANNEL_RETENTION = 1_000_000;

/**
 * The run's custom durable channel, defined like an app's (examples/app-express/src/comments.ts):
 * one topic per post inside a workspace, durable, every member may subscribe.
 */
export const postsChannel = defineChannel({
  name: 'chaosPosts',
  input: z.object({ postId: z.string().min(1) }),
  event: z.object({ pubKey: z.string().min(1), n: z.number().int() }),
  durable: true,
  retention: CHANNEL_RETENTION,
});

/** What the chaos nodes serve: Pulse's routers and the channel. */
export const chaosRouter = router({ ...createPulseRouters(), channels: channelRouter([postsChannel]) });
export type ChaosRouter = typeof chaosRouter;

/** Posts (channel topics) per workspace. */
export const POSTS = ['post-1', 'post-2', 'post-3'];
