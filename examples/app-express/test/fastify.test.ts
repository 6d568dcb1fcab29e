import type { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../src/app.js';
import { startFastifyExample } from '../src/fastify-server.js';
import { collect, connectApp, startIdentityProvider } from './support.js';

let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
beforeAll(async () => {
  idp = await startIdentityProvider();
});
afterAll(() => idp.close());

describe('example app on Fastify', () => {
  it("serves Pulse (HTTP, WebSocket, REST) and the app's Fastify routes on one server", async () => {
    const app = await startFastifyExample({ config: idp.config() });
    try {
      await using alice = connectApp(app, await idp.token('alice', 'acme'));
      await alice.trpc.posts.create.mutate({ workspaceId: 'acme', id: 'p1', title: 'Launch' });
      const seen = collect();
      alice.trpc.channels.comments.subscribe.subscribe(
        { workspaceId: 'acme', input: { postId: 'p1' } },
        seen,
      );
      await vi.waitFor(() => expect(seen.synced()).toBe(true));
      await alice.trpc.channels.comments.publish.mutate({
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { commentId: 'c1', text: 'from fastify' },
      });
      await vi.waitFor(() => expect(seen.events()).toHaveLength(1));
      expect(seen.events()[0]?.data).toMatchObject({ from: 'alice', data: { text: 'from fastify' } });

      // The app's own route and Fastify's 404 for unknown paths.
      expect(await (await fetch(`${app.url}/api/health`)).json()).toEqual({
        ok: true,
        app: 'example-fastify',
      });
      const missing = await fetch(`${app.url}/api/nope`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { message: string }).message).toBe('Route GET:/api/nope not found');

      // REST with a bad payload: the zod path, in Pulse's REST error body.
      const bad = await fetch(`${app.url}/realtime/channels/comments/publish`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await idp.token('alice', 'acme')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          workspaceId: 'acme',
          input: { postId: 'p1' },
          event: { commentId: 'c2', text: 7 },
        }),
      });
      expect(bad.status).toBe(400);
      const body = (await bad.json()) as { error: { code: string; issues: Array<{ path: string[] }> } };
      expect(body.error.code).toBe('BAD_REQUEST');
      expect(body.error.issues.map((issue) => issue.path)).toEqual([['event', 'text']]);

      // A malformed token is refused (UNAUTHORIZED, jose's reason).
      const other = connectApp(app, 'not-a-token');
      const refused = await other.trpc.posts.list.query({ workspaceId: 'acme' }).catch((e: unknown) => e);
      expect((refused as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED');
      expect((refused as Error).message).toBe('Token malformed');
      other.close();

      // Upgrades to other paths are not Pulse's; with no other upgrade listener they get a 404.
      const stray = new WebSocket(`${app.wsUrl.replace('/trpc', '/other')}`);
      const strayError = await new Promise<Error>((resolve) => stray.once('error', resolve));
      expect(strayError.message).toBe('Unexpected server response: 404');
    } finally {
      await app.close();
    }
  });
});
