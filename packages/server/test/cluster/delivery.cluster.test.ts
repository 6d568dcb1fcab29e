import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PresenceEvent } from '../../src/presence/presence.schema.js';
import { createPublisher } from '../../src/publisher-process.js';
import {
  collect,
  sleep,
  type TestClient,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
  clusterToken,
  connectToCluster,
  idsOf,
  type NodeProcess,
  range,
  startCluster,
} from '../support/vitest.js';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

interface Tracked<T = { type: string } & Record<string, unknown>> {
  id: string;
  data: T;
}

const alert = (title: string) => ({
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

const contact = (i: number) => ({ id: `contact-${i}`, name: `Contact ${i}` });

/** Every id from "1" up to the highest one seen, exactly once each, in order. */
function expectWholeStream(lists: Array<Array<{ id: string }>>, total: number) {
  for (const list of lists) expect(idsOf(list)).toEqual(range(total));
}

describe.skipIf(unavailable)('three real node processes on Redis + PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let nodes: NodeProcess[] & AsyncDisposable;
  const redisPrefix = uniquePrefix();
  const clients: TestClient[] = [];
  const connect = async (first: number, sub: string, workspaces: Record<string, 'member' | 'admin'>) => {
    const client = connectToCluster(nodes, first, await clusterToken({ sub, name: sub, workspaces }));
    clients.push(client);
    return client;
  };
  const service = async (first: number) => {
    const client = connectToCluster(nodes, first, await clusterToken({ sub: 'backend', service: true }));
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    nodes = await startCluster({ databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix }, 3, {
      PULSE_INBOX_SLA_POLL_MS: '100',
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await nodes?.[Symbol.asyncDispose]();
    await db?.drop();
  });

  it('concurrent publishers on two nodes: users on every node get every notification and inbox event once, in store order', async () => {
    const users = await Promise.all([0, 1, 2].map((i) => connect(i, `member${i}`, { acme: 'member' })));
    const notes = users.map(() => collect<Tracked>());
    const inbox = users.map(() => collect<Tracked>());
    for (const [i, user] of users.entries()) {
      // lastEventId "0": the whole stream from the store, then live: nothing can slip past the start.
      user.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, notes[i]!);
      user.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: '0' }, inbox[i]!);
    }
    const [s1, s2] = await Promise.all([service(0), service(1)]);
    const perNode = 25;
    await Promise.all(
      [s1!, s2!].flatMap((s, node) =>
        Array.from({ length: perNode }, (_, i) => [
          s.trpc.notifications.send.mutate({ workspaceId: 'acme', ...alert(`node${node}-${i}`) }),
          s.trpc.inbox.receive.mutate({
            workspaceId: 'acme',
            platform: 'instagram',
            externalId: `thread-${i % 3}`,
            contact: contact(i % 3),
            body: `hello ${node}-${i}`,
          }),
        ]).flat(),
      ),
    );
    const totalNotes = 2 * perNode;
    await vi.waitFor(() => {
      for (const c of notes) expect(c.items.length).toBeGreaterThanOrEqual(totalNotes);
    });
    // The inbox stream carries message and conversation events: every id up to the newest one.
    const newest = () => Math.max(0, ...inbox.flatMap((c) => idsOf(c.items).map(Number)));
    await vi.waitFor(() => {
      for (const c of inbox) {
        expect(c.items.filter((e) => e.data.type === 'message')).toHaveLength(2 * perNode);
        expect(c.items).toHaveLength(newest());
      }
    });
    // One more of each is the barrier: once it is there on every node, nothing earlier can still
    // arrive (late or twice).
    await s1!.trpc.notifications.send.mutate({ workspaceId: 'acme', ...alert('barrier') });
    await s2!.trpc.inbox.receive.mutate({
      workspaceId: 'acme',
      platform: 'instagram',
      externalId: 'thread-0',
      contact: contact(0),
      body: 'barrier',
    });
    await vi.waitFor(() => {
      for (const c of notes) expect(c.items.length).toBeGreaterThanOrEqual(totalNotes + 1);
      for (const c of inbox)
        expect(c.items.filter((e) => e.data.type === 'message')).toHaveLength(2 * perNode + 1);
    });
    expectWholeStream(
      notes.map((c) => c.items),
      totalNotes + 1,
    );
    expectWholeStream(
      inbox.map((c) => c.items),
      newest(),
    );
    expect(inbox[0]!.items.filter((e) => e.data.type === 'message')).toHaveLength(2 * perNode + 1);
    for (const c of [...notes, ...inbox]) expect(c.errors).toEqual([]);
  });

  it('a publisher process reaches sockets on every node, and reads presence set on them', async () => {
    const users = await Promise.all([0, 1, 2].map((i) => connect(i, `viewer${i}`, { globex: 'member' })));
    const notes = users.map(() => collect<Tracked>());
    const dash = users.map(() => collect<{ type: string }>());
    for (const [i, user] of users.entries()) {
      user.trpc.notifications.onNotification.subscribe(
        { workspaceId: 'globex', lastEventId: '0' },
        notes[i]!,
      );
      user.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'globex' }, dash[i]!);
    }
    await vi.waitFor(() => {
      for (const c of dash) expect(c.items[0]).toMatchObject({ type: 'snapshot' });
    });
    await users[2]!.trpc.presence.set.mutate({ workspaceId: 'globex', status: 'online', page: '/reports' });

    await using publisher = await createPublisher({ databaseUrl: db.url, redisUrl: REDIS_URL, redisPrefix });
    expect(await publisher.getWorkspacePresence('globex')).toEqual([
      expect.objectContaining({ userId: 'viewer2', page: '/reports' }),
    ]);
    expect(await publisher.isUserOnline('globex', 'viewer2')).toBe(true);
    await publisher.sendCrisisAlert({
      workspaceId: 'globex',
      data: { severity: 'high', topic: 'outage', volume: 420 },
    });
    await publisher.broadcastMetricUpdate({
      workspaceId: 'globex',
      platform: 'instagram',
      accountId: 'brand',
      metric: 'reach',
      value: 1234,
    });
    await vi.waitFor(() => {
      for (const c of notes)
        expect(c.items.map((e) => e.data)).toEqual([
          expect.objectContaining({
            type: 'notification',
            notification: expect.objectContaining({ type: 'crisis' }),
          }),
        ]);
      for (const c of dash)
        expect(c.items[1]).toMatchObject({ type: 'update', kind: 'metric', metric: 'reach', value: 1234 });
    });
  });

  it('SLA escalation fires exactly once with three nodes polling', async () => {
    const admin = await connect(0, 'boss', { sla: 'admin' });
    const watchers = await Promise.all([1, 2].map((i) => connect(i, `agent${i}`, { sla: 'member' })));
    const events = watchers.map(() => collect<Tracked>());
    const alerts = watchers.map(() => collect<Tracked>());
    for (const [i, w] of watchers.entries()) {
      w.trpc.inbox.onEvent.subscribe({ workspaceId: 'sla', lastEventId: '0' }, events[i]!);
      w.trpc.notifications.onNotification.subscribe({ workspaceId: 'sla', lastEventId: '0' }, alerts[i]!);
    }
    await admin.trpc.inbox.setSla.mutate({ workspaceId: 'sla', slaMs: 300 });
    const s = await service(2);
    await s.trpc.inbox.receive.mutate({
      workspaceId: 'sla',
      platform: 'whatsapp',
      externalId: 'late-reply',
      contact: contact(9),
      body: 'anyone there?',
    });
    await vi.waitFor(
      () => {
        for (const c of events) expect(c.items.map((e) => e.data.type)).toContain('sla_escalated');
        for (const c of alerts) expect(c.items).toHaveLength(1);
      },
      { timeout: 10_000 },
    );
    // Three nodes poll every 100 ms: give them many more rounds to (wrongly) escalate again.
    // NOTE: a real wait on purpose: the pollers run in other processes, so no fake clock reaches
    // them, and "no second escalation" has no event to wait for.
    await sleep(1_000);
    for (const c of events) expect(c.items.filter((e) => e.data.type === 'sla_escalated')).toHaveLength(1);
    for (const c of alerts) {
      expect(c.items).toHaveLength(1);
      expect(c.items[0]!.data).toMatchObject({ notification: { type: 'alert' } });
    }
  });

  it('SIGKILL a node: its user leaves on the others, its client resumes on another node with nothing lost or doubled', async () => {
    const observer = await connect(0, 'observer', { kill: 'member' });
    const seen = collect<PresenceEvent>();
    observer.trpc.presence.onChange.subscribe({ workspaceId: 'kill' }, seen);
    // NOTE: the snapshot first: a presence set before it would be in the snapshot, not a `join`.
    await vi.waitFor(() => expect(seen.items[0]).toMatchObject({ type: 'snapshot' }));
    // This client starts on node 3 and fails over to node 1 when node 3 dies.
    const victim = await connect(2, 'victim', { kill: 'member' });
    const notes = collect<Tracked>();
    victim.trpc.notifications.onNotification.subscribe({ workspaceId: 'kill', lastEventId: '0' }, notes);
    await victim.trpc.presence.set.mutate({ workspaceId: 'kill', status: 'online' });
    await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'join' })));
    const s = await service(0);
    const send = (i: number) => s.trpc.notifications.send.mutate({ workspaceId: 'kill', ...alert(`n${i}`) });
    for (let i = 0; i < 10; i++) await send(i);
    await vi.waitFor(() => expect(notes.items).toHaveLength(10));

    const sending = (async () => {
      for (let i = 10; i < 30; i++) await send(i);
    })();
    await nodes[2]!.kill('SIGKILL');
    await sending;
    await vi.waitFor(() => expect(notes.items.length).toBeGreaterThanOrEqual(30), { timeout: 10_000 });
    await vi.waitFor(
      () =>
        expect(seen.items).toContainEqual({
          type: 'leave',
          workspaceId: 'kill',
          at: expect.any(String),
          userId: 'victim',
        }),
      { timeout: 5_000 },
    );
    // One more send is the barrier: once it is there, none of the 30 can still arrive (twice).
    await send(30);
    await vi.waitFor(() => expect(notes.items).toHaveLength(31), { timeout: 10_000 });
    expect(idsOf(notes.items)).toEqual(range(31));
    expect(notes.errors).toEqual([]);
  });
});
