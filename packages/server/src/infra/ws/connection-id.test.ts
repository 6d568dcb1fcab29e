import { describe, expect, it } from 'vitest';
import { connectionId } from './attach.js';

describe('connection ids', () => {
  it('are 128 random bits in hex, distinct across refills of the random pool', () => {
    // 256 ids per pool: 2,000 ids cross several refills.
    const ids = Array.from({ length: 2000 }, () => connectionId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Every hex digit turns up in every position (the bytes are not a counter or a constant).
    for (let position = 0; position < 32; position++) {
      expect(new Set(ids.map((id) => id[position])).size).toBe(16);
    }
  });
});
