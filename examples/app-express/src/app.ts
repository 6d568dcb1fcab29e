import { channelRouter, createPulseRouters, router } from '@pulse/server';
import { commentsChannel } from './comments.js';
import { notificationKinds } from './invoices.js';
import { PostStore, postsRouter } from './posts.js';
import { dashboardKinds } from './revenue.js';

/**
 * Everything the app adds to Pulse: its posts, its comments channel, its `invoice_paid`
 * notification kind and its `mrr` dashboard kind, composed with Pulse's routers.
 */
export function createApp() {
  const posts = new PostStore();
  const comments = commentsChannel(posts);
  const appRouter = router({
    ...createPulseRouters({ notificationKinds, dashboardKinds }),
    posts: postsRouter(posts),
    channels: channelRouter([comments]),
  });
  return { posts, comments, appRouter };
}

/** The app's router type: what `createTRPCClient<AppRouter>` (and the React SDK) are typed with. */
export type AppRouter = ReturnType<typeof createApp>['appRouter'];
