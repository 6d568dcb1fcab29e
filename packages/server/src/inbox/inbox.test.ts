import { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  createTestDatabase,
  postgresUnavailable,
} from '../../test/support/vitest.js';
import type { PulseConfigInput } from '../config.js';
import type { AppRouter } from '../router.js';
import type { InboxEvent, InboxReceiveInput } from './inbox.schema.js';

type Tracked = { id: string; data: InboxEvent };
const code = (error: unknown) => (error as TRPCClientError<AppRouter>).data?.code;
const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (e: unknown) => e,
  );

const incoming = (over: Partial<InboxReceiveInput> = {}): InboxReceiveInput => ({
  workspaceId: 'acme',
  platform: 'instagram',
  externalId: 'thread-1',
  contact: { id: 'c-42', name: 'Carla', handle: '@carla' },
  body: 'Hi, my order never arrived',
  ...over,
});

const pgDown = await postgresUnavailable();
/** Every test runs on SQLite and, when reachable (always in CI), on a private PostgreSQL database. */
const stores = pgDown === null ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);
type StoreKind = (typeof stores)[number];

/** A test server on the given store; disposing it also drops its PostgreSQL database. */
async function startOn(store: StoreKind, config: PulseConfigInput = {}) {
  const database = store === 'postgres' ? await createTestDatabase() : null;
  const server = await startTestServer({
    config: { ...config, ...(database ? { databaseUrl: database.url } : {}) },
  });
  const dispose = server[Symbol.asyncDispose];
  return Object.assign(server, {
    [Symbol.asyncDispose]: async () => {
      await dispose();
      await database?.drop();
    },
  });
}

async function setup(store: StoreKind) {
  const server = await startOn(store);
  const alice = connectClient(
    server,
    await server.token({ sub: 'alice', name: 'Alice', workspaces: { acme: 'admin' } }),
  );
  const bob = connectClient(
    server,
    await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } }),
  );
  const eve = connectClient(server, await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }));
  return {
    server,
    alice,
    bob,
    eve,
    async [Symbol.asyncDispose]() {
      await Promise.all([alice.close(), bob.close(), eve.close()]);
      await server[Symbol.asyncDispose]();
    },
  };
}

describe.each(stores)('inbox on %s', (store) => {
  it('receive: subscribers of the workspace see the new conversation and its message; another workspace sees nothing', async () => {
    await using t = await setup(store);
    const seen = collect<Tracked>();
    t.bob.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, seen);
    const other = collect<Tracked>();
    t.eve.trpc.inbox.onEvent.subscribe({ workspaceId: 'globex' }, other);
    const sneak = collect<Tracked>();
    t.eve.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, sneak);
    await vi.waitFor(() => expect(sneak.errors).toHaveLength(1));
    expect(code(sneak.errors[0])).toBe('FORBIDDEN');
    await synced(seen, other);

    const first = await t.server.caller.inbox.receive(incoming({ platformMessageId: 'ig-1' }));
    expect(first.created).toBe(true);
    expect(first.conversation).toMatchObject({ status: 'open', assigneeId: null, escalatedAt: null });
    expect(first.conversation.slaDueAt).not.toBeNull();
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    expect(seen.items.map((e) => e.data.type)).toEqual(['conversation', 'message']);
    expect(seen.items[1]?.data).toMatchObject({
      type: 'message',
      workspaceId: 'acme',
      conversationId: first.conversation.id,
      message: {
        direction: 'inbound',
        authorName: 'Carla',
        body: 'Hi, my order never arrived',
        authorId: null,
      },
    });
    expect(Number(seen.items[1]?.id)).toBeGreaterThan(Number(seen.items[0]?.id));

    // The same platform message again is a no-op; a new one lands in the same conversation.
    const again = await t.server.caller.inbox.receive(incoming({ platformMessageId: 'ig-1' }));
    expect(again).toMatchObject({ created: false, message: { id: first.message.id } });
    const second = await t.server.caller.inbox.receive(
      incoming({ platformMessageId: 'ig-2', body: 'Hello?' }),
    );
    expect(second.conversation.id).toBe(first.conversation.id);
    // Barrier: Alice's read receipt is committed after both receives, and the stream is delivered in
    // order, so once it is here anything the duplicate (or the second message) emitted is here too.
    await t.alice.trpc.inbox.markRead.mutate({
      conversationId: first.conversation.id,
      upToMessageId: second.message.id,
    });
    await vi.waitFor(() => expect(seen.items.map((e) => e.data.type)).toContain('read'));
    expect(seen.items.map((e) => e.data.type)).toEqual(['conversation', 'message', 'message', 'read']);
    expect(seen.items[2]?.data).toMatchObject({ type: 'message', message: { id: second.message.id } });

    const page = await t.bob.trpc.inbox.messages.query({ conversationId: first.conversation.id });
    expect(page.items.map((m) => m.body)).toEqual(['Hi, my order never arrived', 'Hello?']);
    const list = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme' });
    expect(list.items).toEqual([expect.objectContaining({ id: first.conversation.id, unreadCount: 2 })]);
    expect(other.items).toEqual([]);
  });

  it('receive into an existing conversation: a running clock keeps its due time; after a reply or a close the next one starts the workspace’s SLA', async () => {
    await using t = await setup(store);
    await t.alice.trpc.inbox.setSla.mutate({ workspaceId: 'acme', slaMs: 60_000 });
    const first = await t.server.caller.inbox.receive(incoming({ platformMessageId: 'm-1' }));
    const due = first.conversation.slaDueAt;
    expect(Date.parse(due ?? '') - Date.parse(first.message.at)).toBe(60_000);

    // A follow-up while the clock runs: contact and last message time move, the due time does not.
    await t.alice.trpc.inbox.update.mutate({ conversationId: first.conversation.id, status: 'pending' });
    const renamed = { id: 'c-42', name: 'Carla M.', handle: '@carla' };
    const second = await t.server.caller.inbox.receive(
      incoming({ platformMessageId: 'm-2', body: 'Any news?', contact: renamed }),
    );
    expect(second.conversation).toMatchObject({
      id: first.conversation.id,
      status: 'pending',
      contact: renamed,
      slaDueAt: due,
      lastMessageAt: second.message.at,
    });
    expect(second.message).toMatchObject({ authorName: 'Carla M.', platformMessageId: 'm-2' });

    // After a reply no clock runs: the next inbound message starts one with the workspace's SLA.
    await t.bob.trpc.inbox.send.mutate({
      conversationId: first.conversation.id,
      body: 'On its way',
      clientMessageId: 'r-1',
    });
    await t.alice.trpc.inbox.setSla.mutate({ workspaceId: 'acme', slaMs: 90_000 });
    const third = await t.server.caller.inbox.receive(incoming({ platformMessageId: 'm-3', body: 'Thanks' }));
    expect(third.conversation.status).toBe('pending');
    expect(Date.parse(third.conversation.slaDueAt ?? '') - Date.parse(third.message.at)).toBe(90_000);

    // A closed conversation reopens with a new clock.
    await t.alice.trpc.inbox.update.mutate({ conversationId: first.conversation.id, status: 'closed' });
    const fourth = await t.server.caller.inbox.receive(
      incoming({ platformMessageId: 'm-4', body: 'One more' }),
    );
    expect(fourth.conversation).toMatchObject({
      id: first.conversation.id,
      status: 'open',
      escalatedAt: null,
    });
    expect(Date.parse(fourth.conversation.slaDueAt ?? '') - Date.parse(fourth.message.at)).toBe(90_000);

    const page = await t.bob.trpc.inbox.messages.query({ conversationId: first.conversation.id });
    expect(page.items.map((m) => m.body)).toEqual([
      'Hi, my order never arrived',
      'Any news?',
      'On its way',
      'Thanks',
      'One more',
    ]);
  });

  it('two sends with one clientMessageId (also concurrent) store one message and deliver it once', async () => {
    await using t = await setup(store);
    const { conversation } = await t.server.caller.inbox.receive(incoming());
    const seen = collect<Tracked>();
    t.alice.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', conversationId: conversation.id }, seen);
    await synced(seen);
    const reply = { conversationId: conversation.id, body: 'Sorry! Checking now.', clientMessageId: 'tmp-1' };
    const results = await Promise.all([
      t.bob.trpc.inbox.send.mutate(reply),
      t.bob.trpc.inbox.send.mutate(reply),
      t.bob.trpc.inbox.send.mutate(reply),
    ]);
    expect(new Set(results.map((r) => r.message.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results[0]?.message).toMatchObject({ direction: 'outbound', authorId: 'bob', authorName: 'Bob' });
    const retry = await t.bob.trpc.inbox.send.mutate(reply);
    expect(retry).toMatchObject({ created: false, message: { id: results[0]?.message.id } });

    // Barrier: Bob's read receipt is committed after every send, and the stream is delivered in order,
    // so once it is here any second copy of the message would have arrived before it.
    await t.bob.trpc.inbox.markRead.mutate({
      conversationId: conversation.id,
      upToMessageId: retry.message.id,
    });
    await vi.waitFor(() => expect(seen.items.map((e) => e.data.type)).toContain('read'));
    expect(seen.items.map((e) => e.data.type)).toEqual(['message', 'read']);
    expect(seen.items[0]?.data).toMatchObject({ type: 'message', conversation: { slaDueAt: null } });
    const page = await t.alice.trpc.inbox.messages.query({ conversationId: conversation.id });
    expect(page.items.map((m) => m.direction)).toEqual(['inbound', 'outbound']);
  });

  it('markRead sends a read receipt to the other members and moves only the reader’s unread count', async () => {
    await using t = await setup(store);
    const a = await t.server.caller.inbox.receive(incoming({ body: 'one' }));
    const b = await t.server.caller.inbox.receive(incoming({ body: 'two' }));
    const aliceSees = collect<Tracked>();
    t.alice.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, aliceSees);
    await synced(aliceSees);

    const result = await t.bob.trpc.inbox.markRead.mutate({
      conversationId: a.conversation.id,
      upToMessageId: b.message.id,
    });
    expect(result).toEqual({
      conversationId: a.conversation.id,
      upToMessageId: b.message.id,
      unreadCount: 0,
    });
    await vi.waitFor(() =>
      expect(aliceSees.items.map((e) => e.data)).toContainEqual(
        expect.objectContaining({
          type: 'read',
          conversationId: a.conversation.id,
          userId: 'bob',
          upToMessageId: b.message.id,
        }),
      ),
    );
    // An older watermark never moves it back and sends no receipt.
    const older = await t.bob.trpc.inbox.markRead.mutate({
      conversationId: a.conversation.id,
      upToMessageId: a.message.id,
    });
    expect(older).toMatchObject({ upToMessageId: b.message.id, unreadCount: 0 });

    const forBob = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme' });
    const forAlice = await t.alice.trpc.inbox.conversations.query({ workspaceId: 'acme' });
    expect(forBob.items[0]?.unreadCount).toBe(0);
    expect(forAlice.items[0]?.unreadCount).toBe(2);
    // Bob's own reply is never unread for him, but is for Alice.
    await t.bob.trpc.inbox.send.mutate({
      conversationId: a.conversation.id,
      body: 'on it',
      clientMessageId: 'x',
    });
    // Barrier: the reply is committed after the older markRead and the stream is delivered in order,
    // so once it is here a receipt for that markRead would have arrived before it.
    await vi.waitFor(() => expect(aliceSees.items.map((e) => e.data.type)).toContain('message'));
    expect(aliceSees.items.map((e) => e.data.type)).toEqual(['read', 'message']);
    expect((await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme' })).items[0]?.unreadCount).toBe(
      0,
    );
    expect(
      (await t.alice.trpc.inbox.conversations.query({ workspaceId: 'acme' })).items[0]?.unreadCount,
    ).toBe(3);

    const bad = await errorOf(
      t.bob.trpc.inbox.markRead.mutate({ conversationId: a.conversation.id, upToMessageId: 'msg_nope' }),
    );
    expect(code(bad)).toBe('NOT_FOUND');
  });

  it('resuming with lastEventId after a disconnect gets exactly the missed events, in order, then live ones', async () => {
    await using t = await setup(store);
    const bobToken = await t.server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const first = connectClient(t.server, bobToken);
    const before = collect<Tracked>();
    first.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, before);
    await synced(before);
    const { conversation } = await t.server.caller.inbox.receive(incoming({ body: 'seen' }));
    await vi.waitFor(() => expect(before.items).toHaveLength(2));
    await first.close();

    await t.server.caller.inbox.receive(incoming({ body: 'missed 1' }));
    await t.alice.trpc.inbox.update.mutate({
      conversationId: conversation.id,
      assigneeId: 'bob',
      status: 'pending',
    });
    await t.server.caller.inbox.receive(incoming({ body: 'missed 2' }));

    await using second = connectClient(t.server, bobToken);
    const after = collect<Tracked>();
    second.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: before.items.at(-1)?.id }, after);
    await vi.waitFor(() => expect(after.items).toHaveLength(3));
    expect(after.items.map((e) => e.data.type)).toEqual(['message', 'conversation', 'message']);
    expect(after.items[0]?.data).toMatchObject({ message: { body: 'missed 1' } });
    expect(after.items[1]?.data).toMatchObject({ conversation: { assigneeId: 'bob', status: 'pending' } });
    expect(after.items[2]?.data).toMatchObject({ message: { body: 'missed 2' } });
    const ids = [...before.items, ...after.items].map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);

    await t.server.caller.inbox.receive(incoming({ body: 'live' }));
    await vi.waitFor(() => expect(after.items).toHaveLength(4));
    expect(after.items[3]?.data).toMatchObject({ message: { body: 'live' } });

    // A resume point from another world (ahead of the stream) is refused: subscribe without it.
    const ahead = collect<Tracked>();
    second.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: '999999' }, ahead);
    await vi.waitFor(() => expect(ahead.errors).toHaveLength(1));
    expect(code(ahead.errors[0])).toBe('BAD_REQUEST');
  });

  it('past the retention window a resume yields a reset carrying the head id', async () => {
    await using server = await startOn(store, { inbox: { retention: 2 } });
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await server.caller.inbox.receive(incoming({ body: '1' }));
    for (const body of ['2', '3', '4']) await server.caller.inbox.receive(incoming({ body }));
    const seen = collect<Tracked>();
    bob.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: '1' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    expect(seen.items[0]).toMatchObject({ id: '5', data: { type: 'reset', headId: '5' } });
    await server.caller.inbox.receive(incoming({ body: '5' }));
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    expect(seen.items[1]).toMatchObject({ id: '6', data: { type: 'message' } });
    // Inside the window: a plain replay.
    const recent = collect<Tracked>();
    bob.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: '4' }, recent);
    await vi.waitFor(() => expect(recent.items).toHaveLength(2));
    expect(recent.items.map((e) => e.id)).toEqual(['5', '6']);
    const invalid = collect<Tracked>();
    bob.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: 'abc' }, invalid);
    await vi.waitFor(() => expect(invalid.errors).toHaveLength(1));
    expect(code(invalid.errors[0])).toBe('BAD_REQUEST');
  });

  it('a conversation of another workspace is NOT_FOUND on every conversation procedure; roles are enforced', async () => {
    await using t = await setup(store);
    const { conversation, message } = await t.server.caller.inbox.receive(incoming());
    const id = conversation.id;
    for (const call of [
      () => t.eve.trpc.inbox.send.mutate({ conversationId: id, body: 'hi', clientMessageId: 'e1' }),
      () => t.eve.trpc.inbox.messages.query({ conversationId: id }),
      () => t.eve.trpc.inbox.update.mutate({ conversationId: id, status: 'closed' }),
      () => t.eve.trpc.inbox.markRead.mutate({ conversationId: id, upToMessageId: message.id }),
      () => t.bob.trpc.inbox.messages.query({ conversationId: 'cv_does-not-exist' }),
    ]) {
      const error = await errorOf(call());
      expect(error).toBeInstanceOf(TRPCClientError);
      expect(code(error)).toBe('NOT_FOUND');
    }
    // Nothing changed.
    expect((await t.bob.trpc.inbox.messages.query({ conversationId: id })).items).toHaveLength(1);
    expect(code(await errorOf(t.bob.trpc.inbox.receive.mutate(incoming())))).toBe('FORBIDDEN');
    expect(code(await errorOf(t.bob.trpc.inbox.setSla.mutate({ workspaceId: 'acme', slaMs: 10 })))).toBe(
      'FORBIDDEN',
    );
    expect(code(await errorOf(t.eve.trpc.inbox.conversations.query({ workspaceId: 'acme' })))).toBe(
      'FORBIDDEN',
    );
    const badInput = await errorOf(t.bob.trpc.inbox.update.mutate({ conversationId: id }));
    expect(code(badInput)).toBe('BAD_REQUEST');
  });

  it('lists conversations by status and assignee with cursor pagination; messages page back in time', async () => {
    await using t = await setup(store);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { conversation } = await t.server.caller.inbox.receive(
        incoming({ externalId: `t-${i}`, at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }),
      );
      ids.push(conversation.id);
    }
    await t.alice.trpc.inbox.update.mutate({ conversationId: ids[1]!, assigneeId: 'bob' });
    await t.alice.trpc.inbox.update.mutate({ conversationId: ids[3]!, assigneeId: 'bob', status: 'closed' });

    const p1 = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme', limit: 2 });
    expect(p1.items.map((c) => c.id)).toEqual([ids[4], ids[3]]);
    const p2 = await t.bob.trpc.inbox.conversations.query({
      workspaceId: 'acme',
      limit: 2,
      cursor: p1.nextCursor!,
    });
    expect(p2.items.map((c) => c.id)).toEqual([ids[2], ids[1]]);
    const p3 = await t.bob.trpc.inbox.conversations.query({
      workspaceId: 'acme',
      limit: 2,
      cursor: p2.nextCursor!,
    });
    expect(p3.items.map((c) => c.id)).toEqual([ids[0]]);
    expect(p3.nextCursor).toBeNull();

    const mine = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme', assigneeId: 'bob' });
    expect(mine.items.map((c) => c.id)).toEqual([ids[3], ids[1]]);
    const openMine = await t.bob.trpc.inbox.conversations.query({
      workspaceId: 'acme',
      assigneeId: 'bob',
      status: 'open',
    });
    expect(openMine.items.map((c) => c.id)).toEqual([ids[1]]);
    const unassigned = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme', assigneeId: null });
    expect(unassigned.items).toHaveLength(3);
    const closed = await t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme', status: 'closed' });
    expect(closed.items).toEqual([expect.objectContaining({ id: ids[3], slaDueAt: null })]);
    expect(
      code(await errorOf(t.bob.trpc.inbox.conversations.query({ workspaceId: 'acme', cursor: 'garbage' }))),
    ).toBe('BAD_REQUEST');

    for (const body of ['b', 'c', 'd'])
      await t.server.caller.inbox.receive(incoming({ externalId: 't-0', body }));
    const m1 = await t.bob.trpc.inbox.messages.query({ conversationId: ids[0]!, limit: 3 });
    expect(m1.items.map((m) => m.body)).toEqual(['b', 'c', 'd']);
    const m2 = await t.bob.trpc.inbox.messages.query({
      conversationId: ids[0]!,
      limit: 3,
      cursor: m1.nextCursor!,
    });
    expect(m2.items.map((m) => m.body)).toEqual(['Hi, my order never arrived']);
    expect(m2.nextCursor).toBeNull();
  });
});
