import { defineChannel } from '@pulse/server';
import { z } from 'zod';
import type { PostStore } from './posts.js';

/**
 * The `comments` channel: one durable topic per post (stored, gap-free ids, resumable), events
 * validated by zod, and only people who can see the post may subscribe or comment.
 */
export function commentsChannel(posts: PostStore) {
  return defineChannel({
    name: 'comments',
    input: z.object({ postId: z.string().min(1) }),
    event: z.object({
      commentId: z.string().min(1),
      text: z.string().min(1).max(2_000),
      replyTo: z.string().optional(),
    }),
    durable: true,
    retention: 1_000,
    authorize: ({ principal, workspaceId, input }) =>
      posts.canSee(principal.userId, workspaceId, input.postId),
  });
}

export type CommentsChannel = ReturnType<typeof commentsChannel>;
