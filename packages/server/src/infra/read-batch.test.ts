import { describe, expect, it } from 'vitest';
import { GatherBatch, ReadBatch } from './read-batch.js';

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

describe('GatherBatch', () => {
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  it('answers the different requests of one key made in one turn with one read, each its own result', async () => {
    const batch = new GatherBatch<number, string>();
    const reads: number[][] = [];
    const read = (requests: number[]) => {
      reads.push([...requests]);
      return Promise.resolve(requests.map((n) => `r${n}`));
    };
    const results = await Promise.all([
      batch.get('a', 1, read),
      batch.get('b', 2, read),
      batch.get('a', 3, read),
      batch.get('a', 4, read),
    ]);
    expect(reads).toEqual([[1, 3, 4], [2]]);
    expect(results).toEqual(['r1', 'r2', 'r3', 'r4']);
    expect(batch.pending).toBe(0);
  });

  it('never adds a request to a read in flight; the next batch starts once that read settled', async () => {
    const batch = new GatherBatch<string, string>();
    let version = 0;
    const started: Array<{ requests: string[]; seen: number }> = [];
    const releases: Array<() => void> = [];
    const read = (requests: string[]) => {
      // The read sees the store as it is when it starts.
      const seen = version;
      started.push({ requests: [...requests], seen });
      return new Promise<string[]>((resolve) => {
        releases.push(() => resolve(requests.map((r) => `${r}@${seen}`)));
      });
    };
    const first = batch.get('k', 'a', read);
    await turn();
    expect(started).toEqual([{ requests: ['a'], seen: 0 }]);
    // A write commits while the first read is in flight, then two more requests arrive.
    version = 1;
    const late = [batch.get('k', 'b', read), batch.get('k', 'c', read)];
    await turn();
    await turn();
    // The first read still runs: the late requests wait, gathered in one batch.
    expect(started).toHaveLength(1);
    expect(batch.pending).toBe(1);
    releases[0]?.();
    expect(await first).toBe('a@0');
    await turn();
    expect(started).toEqual([
      { requests: ['a'], seen: 0 },
      { requests: ['b', 'c'], seen: 1 },
    ]);
    releases[1]?.();
    expect(await Promise.all(late)).toEqual(['b@1', 'c@1']);
  });

  it('gives every request of a failed read its error; the next batch reads again', async () => {
    const batch = new GatherBatch<string, string>();
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('store down'));
    };
    const a = batch.get('k', 'a', failing);
    const b = batch.get('k', 'b', failing);
    await expect(a).rejects.toThrow('store down');
    await expect(b).rejects.toThrow('store down');
    expect(calls).toBe(1);
    await expect(batch.get('k', 'c', (requests) => Promise.resolve(requests))).resolves.toBe('c');
  });
});
