import { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import { canAccess } from '../../src/auth/access.js';
import { idSchema, type Principal } from '../../src/auth/auth.schema.js';
import type { AppRouter } from '../../src/router.js';
import { collect, connectWsOnly, startTestServer, openRaw, wireCode } from '../support/vitest.js';

/** Workspace ids a plain object "has" without anyone granting them. */
const INHERITED = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

const codeOf = (error: unknown) =>
  error instanceof TRPCClientError ? (error as TRPCClientError<AppRouter>).data?.code : undefined;

describe('abuse: inherited object members are never workspaces', () => {
  it('two tenants cannot meet in workspace "constructor" & co., over WebSocket or HTTP', async () => {
    await using server = await startTestServer();
    const aliceToken = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const eveToken = await server.token({ sub: 'eve', workspaces: { globex: 'admin' } });
    await using alice = connectWsOnly(server.wsUrl, aliceToken);
    await using eve = connectWsOnly(server.wsUrl, eveToken);
    const aliceSeen = collect<{ type: string }>();
    const aliceSub = alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, aliceSeen);
    await vi.waitFor(() => expect(aliceSeen.items).toHaveLength(1));

    for (const workspaceId of INHERITED) {
      for (const [who, client] of [
        ['alice', alice],
        ['eve', eve],
      ] as const) {
        const set = await client.trpc.presence.set
          .mutate({ workspaceId, status: 'online' })
          .then(() => 'OK', codeOf);
        const list = await client.trpc.presence.list.query({ workspaceId }).then(() => 'OK', codeOf);
        const send = await client.trpc.notifications.send
          .mutate({
            workspaceId,
            userId: who === 'alice' ? 'eve' : 'alice',
            type: 'alert',
            title: 'hi',
            data: { alertType: 'quota', severity: 'info', message: 'x' },
          })
          .then(() => 'OK', codeOf);
        expect({ workspaceId, who, set, list, send }).toEqual({
          workspaceId,
          who,
          set: 'BAD_REQUEST',
          list: 'BAD_REQUEST',
          send: 'BAD_REQUEST',
        });
      }
      const seen = collect();
      const sub = eve.trpc.presence.onChange.subscribe({ workspaceId }, seen);
      await vi.waitFor(() => expect(seen.errors).toHaveLength(1));
      expect(codeOf(seen.errors[0])).toBe('BAD_REQUEST');
      sub.unsubscribe();

      // HTTP, with the id in the URL (REST) and in the tRPC input.
      const rest = await fetch(
        `${server.url}/realtime/presence/workspace/${encodeURIComponent(workspaceId)}`,
        {
          headers: { authorization: `Bearer ${eveToken}` },
        },
      );
      expect(rest.status).toBe(400);
      const restBody = await rest.json();
      expect(restBody.error).toMatchObject({
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path: ['workspaceId'], message: 'is a reserved name' })],
      });
      const trpc = await fetch(
        `${server.url}/trpc/presence.list?input=${encodeURIComponent(JSON.stringify({ workspaceId }))}`,
        { headers: { authorization: `Bearer ${aliceToken}` } },
      );
      expect(trpc.status).toBe(400);
      expect((await trpc.json()).error.data.code).toBe('BAD_REQUEST');
    }
    // Neither saw anything of the other: alice's own workspace shows only her snapshot.
    expect(aliceSeen.items).toEqual([expect.objectContaining({ type: 'snapshot', users: [] })]);
    expect(await server.caller.presence.list({ workspaceId: 'acme' })).toEqual([]);
    aliceSub.unsubscribe();
  });

  it('a raw socket frame naming workspace "__proto__" is refused with BAD_REQUEST', async () => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'eve', workspaces: { globex: 'admin' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({
      id: 1,
      method: 'mutation',
      params: { path: 'presence.set', input: { workspaceId: '__proto__', status: 'online' } },
    });
    raw.send({
      id: 2,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'constructor' } },
    });
    expect(wireCode(await raw.next((m) => m.id === 1))).toBe('BAD_REQUEST');
    expect(wireCode(await raw.next((m) => m.id === 2))).toBe('BAD_REQUEST');
    await raw.close();
  });

  it('a token granting a reserved workspace id is refused (UNAUTHORIZED, claims invalid)', async () => {
    await using server = await startTestServer();
    const token = await server.token({
      sub: 'mallory',
      workspaces: { ['__proto__']: 'admin', constructor: 'admin' } as Record<string, 'admin'>,
    });
    const res = await fetch(`${server.url}/realtime/presence/workspace/acme`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(401);
    expect((await res.json()).error).toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(
        /^Invalid token claims: workspaces\.(constructor|__proto__): Invalid key in record/,
      ),
    });
  });

  it('access checks read own roles only, even on a principal built as a plain object', () => {
    const plain: Principal = {
      userId: 'bob',
      name: 'Bob',
      workspaces: { acme: 'member' },
      service: false,
      expiresAt: Date.now() + 60_000,
    };
    const scoped: Principal = { ...plain, userId: 'svc', workspaces: { acme: 'admin' }, service: true };
    for (const id of INHERITED) {
      expect({
        id,
        member: canAccess(plain, id, 'member'),
        service: canAccess(scoped, id, 'service'),
      }).toEqual({
        id,
        member: false,
        service: false,
      });
      expect(idSchema.safeParse(id).error?.issues[0]?.message).toBe('is a reserved name');
    }
    expect(canAccess(plain, 'acme', 'member')).toBe(true);
  });
});
