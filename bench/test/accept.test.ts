/**
 * Smoke run of the accept bench (no timing assertions): every server kind with 10 idle
 * subscribers accepts 30 new connections, each through its protocol's full first exchange.
 */
import { describe, expect, it } from 'vitest';
import { renderAcceptMarkdown, runAcceptScenario } from '../src/accept.js';
import type { ServerKind } from '../src/shared.js';

const kinds: ServerKind[] = ['ws', 'socketio', 'pulse-dashboard', 'pulse-notifications'];

describe('accept bench', () => {
  it.each(kinds)(
    '%s: 30 new connections beside 10 idle ones are all accepted',
    { timeout: 60_000 },
    async (kind) => {
      const row = await runAcceptScenario(kind, 10, { m: 30, concurrency: 8, pin: false });
      expect(row.error).toBeUndefined();
      expect(row.accepted).toBe(30);
      expect(row.failed).toBe(0);
      expect(row.reasons).toEqual([]);
      expect(row.cpuPerAccept).toBeGreaterThan(0);
      expect(renderAcceptMarkdown([row])).toContain(`| ${kind} | 10 | 30 |`);
    },
  );
});
