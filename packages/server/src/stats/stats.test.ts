import type { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import { collect, connectClient, connectWsOnly, startTestServer } from '../../test/support/vitest.js';
import type { AppRouter } from '../router.js';

const codeOf = (error: unknown) => (error as TRPCClientError<AppRouter>).data?.code;

describe('stats', () => {
  it('stats.workspace counts connections, subscriptions and online users of that workspace only', async () => {
    await using server = await startTestServer({ config: { nodeId: 'node-a' } });
    const aliceToken = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    await using alice = connectWsOnly(server.wsUrl, aliceToken);
    await using eve = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'eve', workspaces: { globex: 'member' } }),
    );
    const seen = collect();
    const sub = alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await eve.trpc.presence.set.mutate({ workspaceId: 'globex', status: 'online' });

    const acme = await alice.trpc.stats.workspace.query({ workspaceId: 'acme' });
    expect(acme).toMatchObject({ workspaceId: 'acme', connections: 1, subscriptions: 1, onlineUsers: 1 });
    expect(acme.nodes).toEqual([{ nodeId: 'node-a', connections: 1, subscriptions: 1 }]);

    // Every tenant's totals are for operators (an unscoped service), not for a workspace admin.
    await expect(alice.trpc.stats.global.query()).rejects.toSatisfy((e) => codeOf(e) === 'FORBIDDEN');
    const global = await server.caller.stats.global();
    expect(global.nodes).toHaveLength(1);
    expect(global.nodes[0]).toMatchObject({
      nodeId: 'node-a',
      connections: 2,
      users: 2,
      subscriptions: 1,
      subscriptionsByPath: { 'presence.onChange': 1 },
    });
    expect(global.totals).toEqual({ connections: 2, subscriptions: 1, onlineUsers: 2 });

    sub.unsubscribe();
    await vi.waitFor(async () =>
      expect(await alice.trpc.stats.workspace.query({ workspaceId: 'acme' })).toMatchObject({
        subscriptions: 0,
      }),
    );
    await expect(eve.trpc.stats.workspace.query({ workspaceId: 'acme' })).rejects.toSatisfy(
      (e) => codeOf(e) === 'FORBIDDEN',
    );
    // A member of no workspace as admin may not see the platform's totals.
    await expect(eve.trpc.stats.global.query()).rejects.toSatisfy((e) => codeOf(e) === 'FORBIDDEN');
  });

  it('stats.global lists every node that shares the store', async () => {
    await using a = await startTestServer({ config: { nodeId: 'node-a' }, sqliteFile: ':memory:' });
    await using b = await startTestServer({ config: { nodeId: 'node-b' }, store: a.services.store });
    await using client = connectWsOnly(
      b.wsUrl,
      await b.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await client.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await b.services.stats.report();
    const global = await a.caller.stats.global();
    expect(global.nodes.map((n) => [n.nodeId, n.connections])).toEqual([
      ['node-a', 0],
      ['node-b', 1],
    ]);
    const acme = await a.caller.stats.workspace({ workspaceId: 'acme' });
    expect(acme.nodes).toEqual([
      { nodeId: 'node-a', connections: 0, subscriptions: 0 },
      { nodeId: 'node-b', connections: 1, subscriptions: 0 },
    ]);
    await b.close();
    expect((await a.caller.stats.global()).nodes.map((n) => n.nodeId)).toEqual(['node-a']);
  });

  it('an unauthenticated call is UNAUTHORIZED', async () => {
    await using server = await startTestServer();
    await using anon = connectClient(server, 'not-a-token');
    await expect(anon.trpc.stats.workspace.query({ workspaceId: 'acme' })).rejects.toSatisfy(
      (e) => codeOf(e) === 'UNAUTHORIZED',
    );
  });
});
