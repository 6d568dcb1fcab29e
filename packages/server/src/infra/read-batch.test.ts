import { describe, expect, it } from 'vitest';
import { ReadBatch } from './read-batch.js';

describe('ReadBatch', () => {
  it('runs one read for the callers of one key that ask in the same turn, one per key', async () => {
    const batch = new ReadBatch<string>();
    const reads: string[] = [];
    const read = (key: string) => () => {
      reads.push(key);
      return Promise.resolve(`${key}#${reads.length}`);
    };
    const results = await Promise.all([
      batch.get('a', read('a')),
      batch.get('a', read('a')),
      batch.get('b', read('b')),
      batch.get('a', read('a')),
    ]);
    expect(reads).toEqual(['a', 'b']);
    expect(results).toEqual(['a#1', 'a#1', 'b#2', 'a#1']);
    expect(batch.waiting).toBe(0);
  });

  it('never hands a caller a read that started before it asked: it gets the next one', async () => {
    const batch = new ReadBatch<number>();
    let version = 0;
    let release: () => void = () => {};
    const started: number[] = [];
    const read = () => {
      // The read sees the store as it is when it starts.
      const seen = version;
      started.push(seen);
      return new Promise<number>((resolve) => {
        release = () => resolve(seen);
      });
    };
    const first = batch.get('k', read);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0]);
    // A write commits while the first read is in flight, then a subscriber asks.
    version = 1;
    const late = batch.get('k', read);
    release();
    expect(await first).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1]);
    release();
    expect(await late).toBe(1);
  });

  it('gives every caller of a failed read its error; the next caller reads again', async () => {
    const batch = new ReadBatch<string>();
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('store down'));
    };
    const a = batch.get('k', failing);
    const b = batch.get('k', failing);
    await expect(a).rejects.toThrow('store down');
    await expect(b).rejects.toThrow('store down');
    expect(calls).toBe(1);
    await expect(batch.get('k', () => Promise.resolve('ok'))).resolves.toBe('ok');
  });
});
