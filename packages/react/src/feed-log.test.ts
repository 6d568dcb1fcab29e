import { describe, expect, it } from 'vitest';
import { FeedLog } from './feed-log.js';

describe('FeedLog', () => {
  it('keeps entries in id order and hands out the ones past a position', () => {
    const log = new FeedLog<string>(8);
    for (const id of [3n, 1n, 5n, 4n]) log.add(id, `e${id}`);
    expect(log.after(0n)?.map((e) => e.value)).toEqual(['e1', 'e3', 'e4', 'e5']);
    expect(log.after(3n)?.map((e) => e.id)).toEqual([4n, 5n]);
    expect(log.after(5n)).toEqual([]);
  });

  it('an entry at a taken id replaces the old one only when told to', () => {
    const log = new FeedLog<string>(8);
    log.add(2n, 'counts of a mutation');
    log.add(2n, 'ignored');
    expect(log.after(0n)?.map((e) => e.value)).toEqual(['counts of a mutation']);
    log.add(2n, 'the event', (existing) => existing.startsWith('counts'));
    expect(log.after(0n)?.map((e) => e.value)).toEqual(['the event']);
    expect(log.size).toBe(1);
  });

  it('past its capacity the oldest go, and a position before them gets null (read the answer again)', () => {
    const log = new FeedLog<number>(4);
    for (let i = 1; i <= 6; i++) log.add(BigInt(i), i);
    expect(log.size).toBe(4);
    // 1 and 2 are gone: an answer at 1 misses 2, one at 2 misses nothing.
    expect(log.after(0n)).toBeNull();
    expect(log.after(1n)).toBeNull();
    expect(log.after(2n)?.map((e) => e.value)).toEqual([3, 4, 5, 6]);
    expect(log.after(5n)?.map((e) => e.value)).toEqual([6]);
  });
});
