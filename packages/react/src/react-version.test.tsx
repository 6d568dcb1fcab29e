import { version } from 'react';
import { version as domVersion } from 'react-dom';
import { describe, expect, it } from 'vitest';

describe('React under test', () => {
  it('is the React this run is for (vitest.config.ts: 19, vitest.react18.config.ts: 18)', () => {
    expect(process.env.PULSE_REACT_MAJOR, 'set by the vitest config').toMatch(/^1[89]$/);
    expect(version.split('.')[0]).toBe(process.env.PULSE_REACT_MAJOR);
    expect(domVersion).toBe(version);
  });
});
