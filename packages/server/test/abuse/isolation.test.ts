import { callTRPCProcedure, getTRPCErrorFromUnknown } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/auth.schema.js';
import { appRouter } from '../../src/router.js';
import type { PulseServer } from '../../src/server.js';
import type { PulseContext } from '../../src/trpc.js';
import { startTestServer, expectDrained } from '../support/vitest.js';

/** Ids of things that live in the victim workspace `acme`. */
interface Fixture {
  conversationId: string;
  messageId: string;
}

type Level = 'member' | 'admin' | 'service';

interface Row {
  /** The least privilege the procedure needs in `acme`. */
  level: Level;
  /** A valid input addressed at `acme` (or at an `acme` conversation). */
  input(f: Fixture): unknown;
}

const W = 'acme';

/**
 * Every procedure of the router. A procedure added without a row here fails the first test, so
 * nothing reaches production without a cross-workspace check.
 */
const table: Record<string, Row> = {
  'presence.set': { level: 'member', input: () => ({ workspaceId: W, status: 'online' }) },
  'presence.typing': {
    level: 'member',
    input: () => ({ workspaceId: W, conversationId: 'c1', isTyping: false }),
  },
  'presence.leave': { level: 'member', input: () => ({ workspaceId: W }) },
  'presence.list': { level: 'member', input: () => ({ workspaceId: W }) },
  'presence.get': { level: 'member', input: () => ({ workspaceId: W, userId: 'alice' }) },
  'presence.isOnline': { level: 'member', input: () => ({ workspaceId: W, userId: 'alice' }) },
  'presence.onChange': { level: 'member', input: () => ({ workspaceId: W }) },
  'presence.onTyping': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.send': {
    level: 'admin',
    input: () => ({
      workspaceId: W,
      userId: 'alice',
      type: 'alert',
      title: 'Quota',
      data: { alertType: 'quota', severity: 'info', message: 'at 80%' },
    }),
  },
  'notifications.list': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.unreadCount': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.markRead': { level: 'member', input: () => ({ workspaceId: W, ids: ['1'] }) },
  'notifications.markAllRead': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.onNotification': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.onFeed': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.counts': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.markSeen': { level: 'member', input: () => ({ workspaceId: W, all: true }) },
  'notifications.archive': { level: 'member', input: () => ({ workspaceId: W, ids: ['1'] }) },
  'notifications.unarchive': { level: 'member', input: () => ({ workspaceId: W, all: true }) },
  'notifications.preferences.get': { level: 'member', input: () => ({ workspaceId: W }) },
  'notifications.preferences.set': {
    level: 'member',
    input: () => ({ workspaceId: W, kinds: { review: false } }),
  },
  'dashboard.publish': {
    level: 'admin',
    input: () => ({
      workspaceId: W,
      kind: 'metric',
      platform: 'instagram',
      accountId: 'acc1',
      metric: 'reach',
      value: 10,
    }),
  },
  'dashboard.snapshot': { level: 'member', input: () => ({ workspaceId: W }) },
  'dashboard.onUpdate': { level: 'member', input: () => ({ workspaceId: W }) },
  'dashboard.history': {
    level: 'member',
    input: () => ({ workspaceId: W, kind: 'metric', from: '2026-01-01T00:00:00.000Z' }),
  },
  'inbox.receive': {
    level: 'service',
    input: () => ({
      workspaceId: W,
      platform: 'instagram',
      externalId: 'thread-2',
      contact: { id: 'c-2', name: 'Carol' },
      body: 'hello again',
    }),
  },
  'inbox.send': {
    level: 'member',
    input: (f) => ({
      conversationId: f.conversationId,
      body: 'reply',
      clientMessageId: `m-${Math.random()}`,
    }),
  },
  'inbox.conversations': { level: 'member', input: () => ({ workspaceId: W }) },
  'inbox.messages': { level: 'member', input: (f) => ({ conversationId: f.conversationId }) },
  'inbox.update': {
    level: 'member',
    input: (f) => ({ conversationId: f.conversationId, status: 'pending' }),
  },
  'inbox.markRead': {
    level: 'member',
    input: (f) => ({ conversationId: f.conversationId, upToMessageId: f.messageId }),
  },
  'inbox.setSla': { level: 'admin', input: () => ({ workspaceId: W, slaMs: 60_000 }) },
  'inbox.onEvent': { level: 'member', input: () => ({ workspaceId: W }) },
  // Operators only (an unscoped service): checked by the dedicated test below.
  'stats.global': { level: 'service', input: () => undefined },
  'stats.workspace': { level: 'member', input: () => ({ workspaceId: W }) },
};

const user = (userId: string, workspaces: Principal['workspaces'], service = false): Principal => ({
  userId,
  name: userId,
  workspaces,
  service,
  expiresAt: Date.now() + 3_600_000,
});

/** Callers that must be refused on `acme`, by the least privilege they lack. */
const outsiders: Array<{ who: string; principal: Principal; refusedAt: Level[] }> = [
  {
    who: 'an admin of another workspace',
    principal: user('eve', { globex: 'admin' }),
    refusedAt: ['member', 'admin', 'service'],
  },
  {
    who: 'a service scoped to another workspace',
    principal: user('svc-globex', { globex: 'admin' }, true),
    refusedAt: ['member', 'admin', 'service'],
  },
  { who: 'a member of acme', principal: user('bob', { acme: 'member' }), refusedAt: ['admin', 'service'] },
  { who: 'an admin of acme', principal: user('alice', { acme: 'admin' }), refusedAt: ['service'] },
];

const insider: Record<Level, Principal> = {
  member: user('bob', { acme: 'member' }),
  admin: user('alice', { acme: 'admin' }),
  service: user('svc-acme', { acme: 'admin' }, true),
};

async function call(server: PulseServer, principal: Principal, path: string, input: unknown) {
  const procedure = (
    appRouter._def.procedures as unknown as Record<
      string,
      { _def: { type: 'query' | 'mutation' | 'subscription' } }
    >
  )[path]!;
  const abort = new AbortController();
  const ctx: PulseContext = { principal, authError: null, connectionId: null, services: server.services };
  try {
    return await callTRPCProcedure({
      router: appRouter,
      path,
      getRawInput: async () => input,
      ctx,
      type: procedure._def.type,
      signal: abort.signal,
      batchIndex: 0,
    });
  } finally {
    abort.abort();
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    return getTRPCErrorFromUnknown(error).code;
  }
}

async function fixture(server: PulseServer): Promise<Fixture> {
  const received = (await server.caller.inbox.receive({
    workspaceId: W,
    platform: 'instagram',
    externalId: 'thread-1',
    contact: { id: 'c-1', name: 'Carl' },
    body: 'hi',
  })) as { conversation: { id: string }; message: { id: string } };
  return { conversationId: received.conversation.id, messageId: received.message.id };
}

describe('abuse: isolation across workspaces and users', () => {
  it('the table covers every procedure of the router', () => {
    expect(Object.keys(table).sort()).toEqual(Object.keys(appRouter._def.procedures).sort());
  });

  it.each(Object.entries(table))(
    '%s refuses every caller outside its level and serves an insider',
    async (path, row) => {
      await using server = await startTestServer();
      const f = await fixture(server);
      const workspaceLevel = path === 'stats.global' ? null : row.level;
      for (const { who, principal, refusedAt } of outsiders) {
        if (workspaceLevel === null) continue;
        const code = await codeOf(call(server, principal, path, row.input(f)));
        const expected = refusedAt.includes(row.level) ? ['FORBIDDEN', 'NOT_FOUND'] : ['OK'];
        expect({ who, code }).toEqual({ who, code: expect.toBeOneOf(expected) });
      }
      // The same input from a caller with the right level succeeds: the refusals above were about access.
      const allowed = path === 'stats.global' ? user('ops', {}, true) : insider[row.level];
      expect(await codeOf(call(server, allowed, path, row.input(f)))).toBe('OK');
      await expectDrained(server);
    },
  );

  it('stats.global is refused to members, workspace admins and workspace-scoped services', async () => {
    await using server = await startTestServer();
    for (const p of [
      user('bob', { acme: 'member' }),
      user('alice', { acme: 'admin', globex: 'admin' }),
      user('svc', { acme: 'admin' }, true),
    ])
      expect(await codeOf(call(server, p, 'stats.global', undefined))).toBe('FORBIDDEN');
    expect(await codeOf(call(server, user('ops', {}, true), 'stats.global', undefined))).toBe('OK');
  });

  it("a user never reads or changes another user's notifications in the same workspace", async () => {
    await using server = await startTestServer();
    const alice = user('alice', { acme: 'member' });
    const bob = user('bob', { acme: 'member' });
    for (let i = 0; i < 2; i++)
      await call(
        server,
        insider.admin,
        'notifications.send',
        table['notifications.send']!.input({} as Fixture),
      );
    const aliceList = (await call(server, alice, 'notifications.list', { workspaceId: W })) as {
      items: Array<{ id: string }>;
    };
    expect(aliceList.items).toHaveLength(2);
    const bobList = (await call(server, bob, 'notifications.list', { workspaceId: W })) as {
      items: unknown[];
    };
    expect(bobList.items).toHaveLength(0);
    await call(server, bob, 'notifications.markRead', {
      workspaceId: W,
      ids: aliceList.items.map((n) => n.id),
    });
    await call(server, bob, 'notifications.markAllRead', { workspaceId: W });
    expect(await call(server, alice, 'notifications.unreadCount', { workspaceId: W })).toBe(2);
  });
});
