import { memberProcedure, router } from '@pulse/server';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';

/** The app's own data: posts per workspace (a database in a real app). */
export interface Post {
  id: string;
  workspaceId: string;
  title: string;
  /** Private posts are visible to their author only. */
  private: boolean;
  authorId: string;
}

/** An in-memory post store (one per server in the tests). */
export class PostStore {
  private readonly posts = new Map<string, Post>();

  add(post: Post): Post {
    this.posts.set(post.id, post);
    return post;
  }

  get(id: string): Post | undefined {
    return this.posts.get(id);
  }

  list(workspaceId: string): Post[] {
    return [...this.posts.values()].filter((post) => post.workspaceId === workspaceId);
  }

  /** Whether `userId` may read (and comment on) post `id` of `workspaceId`. */
  canSee(userId: string, workspaceId: string, id: string): boolean {
    const post = this.posts.get(id);
    if (!post || post.workspaceId !== workspaceId) return false;
    return !post.private || post.authorId === userId;
  }
}

/** The app's posts router, built on Pulse's procedure builders (same auth context and rate limits). */
export function postsRouter(store: PostStore) {
  return router({
    create: memberProcedure
      .input(
        z.object({
          id: z.string().min(1).max(64),
          title: z.string().min(1).max(200),
          private: z.boolean().default(false),
        }),
      )
      .mutation(({ ctx, input }) => store.add({ ...input, authorId: ctx.principal.userId })),
    get: memberProcedure.input(z.object({ id: z.string() })).query(({ ctx, input }) => {
      if (!store.canSee(ctx.principal.userId, input.workspaceId, input.id)) {
        throw new TRPCError({ code: 'NOT_FOUND', message: `No post ${input.id}` });
      }
      return store.get(input.id) as Post;
    }),
    list: memberProcedure.query(({ ctx, input }) =>
      store
        .list(input.workspaceId)
        .filter((post) => store.canSee(ctx.principal.userId, input.workspaceId, post.id)),
    ),
  });
}
