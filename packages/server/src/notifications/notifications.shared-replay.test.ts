/**
 * Reconnect storms (issue 21): the resumes of a workspace's notification stream arriving together
 * share their store reads (the stream's head, oldest id and events, the mute preferences, the
 * stored mute decisions), and each subscriber still gets exactly its own events once, in order.
 */
import { setMaxListeners } from 'node:events';
import { AliasNode, type KyselyPlugin, type OperationNode, type RootOperationNode, TableNode } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { storeEngines } from '../../test/support/vitest.js';
import type { Principal } from '../auth/auth.schema.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { Hub } from '../infra/hub.js';
import { createStore, type Store } from '../infra/store/db.js';
import { streamMigrations } from '../streams/streams.tables.js';
import { StreamKernel } from '../streams/stream-kernel.js';
import type { NotificationEvent } from './notifications.schema.js';
import { NotificationService } from './notifications.service.js';
import { notificationMigrations } from './notifications.tables.js';

const engines = await storeEngines();

const RETENTION = 40;
const WORKSPACES = ['acme', 'globex'] as const;
const USERS = Array.from({ length: 10 }, (_, i) => `u${i}`);
/** u3 mutes reviews in acme (after the seed's first half). */
const MUTER = { workspaceId: 'acme', userId: 'u3', kind: 'review' } as const;

/** Counts the SELECT statements per table that go through a Kysely instance. */
class SelectCounter implements KyselyPlugin {
  readonly byTable = new Map<string, number>();
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    const { node } = args;
    if (node.kind === 'SelectQueryNode') {
      for (const from of node.from?.froms ?? []) {
        const name = tableName(from);
        if (name) this.byTable.set(name, (this.byTable.get(name) ?? 0) + 1);
      }
    }
    return node;
  }
  transformResult<R>(args: { result: R }): Promise<R> {
    return Promise.resolve(args.result);
  }
  get total(): number {
    return [...this.byTable.values()].reduce((a, b) => a + b, 0);
  }
  reset(): void {
    this.byTable.clear();
  }
}

function tableName(node: OperationNode): string | undefined {
  if (TableNode.is(node)) return node.table.identifier.name;
  if (AliasNode.is(node)) return tableName(node.node);
  return undefined;
}

/** An event the test appended: what a subscriber of `onNotification` may see of it. */
interface Sent {
  id: number;
  /** null: every member. */
  userId: string | null;
  kind: 'mention' | 'review' | 'preferences';
}

const content = (workspaceId: string, i: number, userId: string | null) => {
  const base = { workspaceId, title: `${workspaceId} #${i}`, ...(userId ? { userId } : {}) };
  return i % 3 === 0
    ? { ...base, type: 'review' as const, data: { platform: 'google' as const, author: 'Sam', rating: 4 } }
    : { ...base, type: 'mention' as const, data: { platform: 'x' as const, author: '@fan', text: `t${i}` } };
};

interface Subscriber {
  workspaceId: string;
  userId: string;
  lastEventId: string | undefined;
  items: Array<{ id: string; data: NotificationEvent }>;
  errors: unknown[];
}

describe.each(engines)('notifications: resumes arriving together share their reads on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    '400 resumes (2 workspaces, 10 users, own ids, some past retention) under a concurrent sender: each gets its events once, in order, then live',
    { timeout: 60_000 },
    async () => {
      await using where = await engine.setup();
      const raw = createStore({ ...where.config, sqliteFile: where.sqliteFile });
      await raw.migrate({ ...streamMigrations, ...notificationMigrations });
      const counter = new SelectCounter();
      const store: Store = { ...raw, db: raw.db.withPlugin(counter) };
      const hub = new Hub(createMemoryBus());
      const kernel = new StreamKernel({ store, hub, relayPollMs: 0 });
      const service = new NotificationService({ store, hub, streams: kernel, retention: RETENTION });
      const abort = new AbortController();
      setMaxListeners(0, abort.signal);
      const sent = new Map<string, Sent[]>(WORKSPACES.map((w) => [w, []]));
      let mutedFrom = Number.POSITIVE_INFINITY;
      const send = async (workspaceId: string, i: number) => {
        // Every third event is for one user, the others for everyone.
        const userId = i % 3 === 1 ? (USERS[i % USERS.length] as string) : null;
        const { notification } = await service.send('system', content(workspaceId, i, userId));
        sent.get(workspaceId)?.push({
          id: Number(notification.eventId),
          userId,
          kind: notification.type as Sent['kind'],
        });
      };
      /** What `onNotification` owes this user after `after`, in order. */
      const owed = (workspaceId: string, userId: string, after: number) =>
        (sent.get(workspaceId) ?? [])
          .filter(
            (e) =>
              e.id > after &&
              e.kind !== 'preferences' &&
              (e.userId === null || e.userId === userId) &&
              !(
                workspaceId === MUTER.workspaceId &&
                userId === MUTER.userId &&
                e.kind === MUTER.kind &&
                e.id > mutedFrom
              ),
          )
          .map((e) => e.id);
      const subscribe = (workspaceId: string, userId: string, lastEventId: string | undefined) => {
        const s: Subscriber = { workspaceId, userId, lastEventId, items: [], errors: [] };
        const stream = service.subscribe({ userId, workspaceId, lastEventId, signal: abort.signal });
        void (async () => {
          for await (const envelope of stream) {
            const [id, data] = envelope as unknown as [string, NotificationEvent];
            s.items.push({ id, data });
          }
        })().catch((error: unknown) => s.errors.push(error));
        return s;
      };
      /** A subscriber's items: exactly what it is owed, once, in order, nothing of anyone else. */
      const check = (s: Subscriber, phaseHead: number) => {
        expect(s.errors).toEqual([]);
        const ids = s.items.map((item) => Number(item.id));
        // Once and in order.
        expect(new Set(ids).size).toBe(ids.length);
        expect([...ids].sort((a, b) => a - b)).toEqual(ids);
        // Never another workspace's or another user's event.
        for (const { data } of s.items) {
          expect(data.workspaceId).toBe(s.workspaceId);
          if (data.type === 'notification') expect([null, s.userId]).toContain(data.notification.userId);
        }
        const [first, ...rest] = s.items;
        if (first && (first.data.type === 'sync' || first.data.type === 'reset')) {
          const head = Number(first.data.headId);
          expect(first.id).toBe(first.data.headId);
          if (first.data.type === 'reset') {
            expect(s.lastEventId).toBeDefined();
            // Reset only for a resume point that had left the window (the oldest kept id is at
            // most `phaseHead - RETENTION + 1`, the head when the phase's writes were done).
            expect(Number(s.lastEventId)).toBeLessThan(phaseHead - RETENTION);
          } else expect(s.lastEventId).toBeUndefined();
          expect(rest.map((item) => Number(item.id))).toEqual(owed(s.workspaceId, s.userId, head));
        } else {
          expect(ids).toEqual(owed(s.workspaceId, s.userId, Number(s.lastEventId)));
        }
      };
      try {
        // Seed: 60 events per workspace; u3 mutes reviews in acme half way.
        for (let i = 1; i <= 60; i++) {
          for (const w of WORKSPACES) await send(w, i);
          if (i === 30) {
            const principal: Principal = {
              userId: MUTER.userId,
              name: MUTER.userId,
              workspaces: { [MUTER.workspaceId]: 'member' },
              service: false,
              expiresAt: Date.now() + 3_600_000,
            };
            await service.setPreferences(principal, {
              workspaceId: MUTER.workspaceId,
              kinds: { [MUTER.kind]: false },
            });
            mutedFrom = Number(await service.headId(MUTER.workspaceId));
            sent.get(MUTER.workspaceId)?.push({ id: mutedFrom, userId: MUTER.userId, kind: 'preferences' });
          }
        }
        const heads = Object.fromEntries(
          await Promise.all(WORKSPACES.map(async (w) => [w, Number(await service.headId(w))] as const)),
        );
        expect(heads).toEqual({ acme: 61, globex: 60 });

        // Phase 1: 200 resumes in one turn, nothing written meanwhile. Resume points from before
        // the window (reset), at its edge, inside, at the head; some without one (sync).
        const resumePoint = (i: number, head: number): string | undefined => {
          const pick = [
            undefined,
            0,
            5,
            head - RETENTION - 1,
            head - RETENTION,
            head - 25,
            head - 7,
            head - 1,
            head,
          ];
          const at = pick[i % pick.length];
          return at === undefined ? undefined : String(at);
        };
        counter.reset();
        const phase1: Subscriber[] = [];
        for (let i = 0; i < 200; i++) {
          const w = WORKSPACES[i % 2] as string;
          phase1.push(
            subscribe(w, USERS[(i >> 1) % USERS.length] as string, resumePoint(i >> 1, heads[w] as number)),
          );
        }
        await vi.waitFor(
          () => {
            for (const s of phase1) {
              const after = s.lastEventId === undefined ? undefined : Number(s.lastEventId);
              const head = heads[s.workspaceId] as number;
              const expected =
                after === undefined || after < head - RETENTION
                  ? 1 + owed(s.workspaceId, s.userId, head).length
                  : owed(s.workspaceId, s.userId, after).length;
              expect(s.items.length).toBe(expected);
            }
          },
          { timeout: 20_000 },
        );
        for (const s of phase1) check(s, heads[s.workspaceId] as number);
        // Some replayed, some were reset, some got a sync.
        const kinds = (list: Subscriber[]) =>
          new Set(
            list.map((s) => (s.items[0]?.data.type === 'notification' ? 'replay' : s.items[0]?.data.type)),
          );
        expect(kinds(phase1)).toEqual(new Set(['replay', 'reset', 'sync', undefined]));
        // The 200 replays (each one head read, one oldest-id read, one event read, one preference
        // read, two mute-decision reads: ~1,000 statements alone) took a handful per workspace.
        const reads = Object.fromEntries(counter.byTable);
        expect(reads.pulse_streams).toBeLessThanOrEqual(WORKSPACES.length);
        expect(reads.pulse_notification_events).toBeLessThanOrEqual(2 * WORKSPACES.length);
        expect(reads.pulse_notification_preferences).toBeLessThanOrEqual(WORKSPACES.length);
        expect(counter.total).toBeLessThanOrEqual(6 * WORKSPACES.length);

        // Phase 2: 200 more resumes in one turn while a sender writes 30 events per workspace.
        const phase2: Subscriber[] = [];
        for (let i = 0; i < 200; i++) {
          const w = WORKSPACES[i % 2] as string;
          phase2.push(
            subscribe(w, USERS[(i >> 1) % USERS.length] as string, resumePoint(i >> 1, heads[w] as number)),
          );
        }
        for (let i = 61; i <= 90; i++) {
          await Promise.all(WORKSPACES.map((w) => send(w, i)));
          if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        const finalHeads = Object.fromEntries(
          await Promise.all(WORKSPACES.map(async (w) => [w, Number(await service.headId(w))] as const)),
        );
        const everyone = [...phase1, ...phase2];
        await vi.waitFor(
          () => {
            for (const s of everyone) {
              const last = owed(s.workspaceId, s.userId, 0).at(-1);
              expect(s.items.at(-1)?.id).toBe(String(last));
            }
          },
          { timeout: 20_000 },
        );
        for (const s of phase1) check(s, heads[s.workspaceId] as number);
        for (const s of phase2) check(s, finalHeads[s.workspaceId] as number);
        expect(kinds(phase2)).toContain('replay');
        expect(kinds(phase2)).toContain('reset');
      } finally {
        abort.abort();
        await service.close();
        await kernel.close();
        await hub.close();
        await raw.close();
      }
    },
  );
});
