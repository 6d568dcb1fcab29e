import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisPresenceBackend } from '../../src/presence/presence.redis.js';
import { REDIS_URL, redisUnavailable, uniquePrefix } from '../support/vitest.js';
import { presenceEntry } from '../support/presence.js';

const unavailable = await redisUnavailable();

const entry = presenceEntry;

describe.skipIf(unavailable)('presence in Redis', () => {
  it('two nodes sweeping a dead node at once report each leave exactly once', async () => {
    const prefix = uniquePrefix();
    const make = (nodeId: string) =>
      createRedisPresenceBackend({ url: REDIS_URL, prefix, nodeId, ttlMs: 60_000 });
    const a = make('a');
    const b = make('b');
    const dead = make('dead');
    try {
      for (let i = 0; i < 40; i++) await dead.upsert('acme', entry('dead', `u${i}`, `c${i}`));
      // u0 also has a tab on a live node: it stays, so no leave for it.
      await a.upsert('acme', entry('a', 'u0', 'tab-on-a'));
      await dead.close(); // the heartbeat is gone, as after a crash once its TTL ran out

      const [fromA, fromB] = await Promise.all([a.sweep(Date.now()), b.sweep(Date.now())]);
      const changes = [...fromA, ...fromB];
      const leaves = changes.filter((c) => c.before && !c.after).map((c) => c.userId);
      expect(leaves.sort()).toEqual(Array.from({ length: 39 }, (_, i) => `u${i + 1}`).sort());
      expect(changes.filter((c) => c.userId === 'u0')).toHaveLength(1);
      expect(await a.list('acme')).toEqual([expect.objectContaining({ userId: 'u0' })]);
      // A second round finds nothing left to remove.
      expect([...(await a.sweep(Date.now())), ...(await b.sweep(Date.now()))]).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a socket removed while its upsert is on the way stays removed, in Redis and in the write-back', async () => {
    // Found by the chaos runner (issue 19): a user listed after its only client had closed. The
    // upsert's reply re-added the entry to the node's local view after the removal had forgotten it
    // (and with `started` awaited first, its command could even reach Redis after the removal's).
    const prefix = uniquePrefix();
    // A short TTL: the heartbeat (every TTL / 3) notices at once when Redis lost this node's entries.
    const backend = createRedisPresenceBackend({ url: REDIS_URL, prefix, nodeId: 'n', ttlMs: 600 });
    const other = createRedisPresenceBackend({ url: REDIS_URL, prefix, nodeId: 'other', ttlMs: 60_000 });
    const admin = new Redis(REDIS_URL);
    try {
      await backend.upsert('acme', entry('n', 'stays', 'c-stays'));
      for (let i = 0; i < 20; i++) {
        const upsert = backend.upsert('acme', entry('n', `ghost-${i}`, `c${i}`));
        const removed = await backend.remove('acme', `ghost-${i}`, `c${i}`);
        const upserted = await upsert;
        // Net effect of the pair: gone.
        expect(upserted.after).toBeNull();
        expect(removed.after).toBeNull();
      }
      expect((await other.list('acme')).map((u) => u.userId)).toEqual(['stays']);
      // Redis loses this node's heartbeat and entries (a restart): the node's write-back from its
      // local view must bring back its live socket and no ghost.
      const lost = new Promise<void>((resolve) => backend.onEntriesLost(resolve));
      const keys = await admin.keys(`${prefix}*`);
      await admin.del(...keys);
      await lost;
      await backend.sweep(Date.now());
      expect((await other.list('acme')).map((u) => u.userId)).toEqual(['stays']);
    } finally {
      admin.disconnect();
      await Promise.all([backend.close(), other.close()]);
    }
  });

  it('lists and counts thousands of users of one workspace without touching the others', async () => {
    const backend = createRedisPresenceBackend({
      url: REDIS_URL,
      prefix: uniquePrefix(),
      nodeId: 'n',
      ttlMs: 60_000,
    });
    try {
      const users = 2_000;
      await Promise.all(
        Array.from({ length: users }, (_, i) => backend.upsert('big', entry('n', `user-${i}`, `conn-${i}`))),
      );
      await backend.upsert('small', entry('n', 'solo', 'conn-solo'));
      const list = await backend.list('big');
      expect(list).toHaveLength(users);
      expect(new Set(list.map((u) => u.userId)).size).toBe(users);
      expect(await backend.countOnline('big')).toBe(users);
      expect(await backend.countOnline()).toBe(users + 1);
      expect(await backend.list('small')).toEqual([expect.objectContaining({ userId: 'solo' })]);
      // HTTP-set presence (with an expiry) goes at the first sweep after it.
      await backend.upsert('small', { ...entry('n', 'api', 'http:api'), expiresAt: Date.now() - 1 });
      const swept = await backend.sweep(Date.now());
      expect(swept).toEqual([expect.objectContaining({ userId: 'api', after: null })]);
    } finally {
      await backend.close();
    }
  });
});
