import { describe, expect, it } from 'vitest';
import { historyDiff, tail } from '../src/checker.js';

describe('the checker compares a client history with the store', () => {
  it('equal histories: no difference', () => {
    expect(historyDiff(['1', '2', '3'], ['1', '2', '3'])).toBeNull();
    expect(historyDiff([], [])).toBeNull();
  });

  it('a missing, a doubled and a reordered id are each named, with the first difference', () => {
    expect(historyDiff(['1', '3'], ['1', '2', '3'])?.detail).toBe(
      'got 2 events, the store has 3; first difference at index 1 (got 3, store 2); missing 1 [2], duplicated []',
    );
    expect(historyDiff(['1', '2', '2', '3'], ['1', '2', '3'])?.detail).toBe(
      'got 4 events, the store has 3; first difference at index 2 (got 2, store 3); missing 0 [], duplicated [2]',
    );
    const reordered = historyDiff(['2', '1'], ['1', '2']);
    expect(reordered?.detail).toContain('first difference at index 0 (got 2, store 1); missing 0 []');
    expect(reordered?.history).toEqual({ got: ['2', '1'], store: ['1', '2'] });
  });

  it('a history cut short (or run past the store) differs at the end of the shorter one', () => {
    expect(historyDiff(['1', '2'], ['1', '2', '3'])?.detail).toContain(
      'first difference at index 2 (got undefined, store 3)',
    );
    expect(historyDiff(['1', '2', '3'], ['1', '2'])?.detail).toContain(
      'first difference at index 2 (got 3, store undefined)',
    );
  });

  it('a long history is reported by its tail', () => {
    const ids = Array.from({ length: 20 }, (_, i) => String(i));
    expect(tail(ids, 3)).toEqual(['…17 earlier', '17', '18', '19']);
    expect(tail(['a'], 3)).toEqual(['a']);
  });
});
