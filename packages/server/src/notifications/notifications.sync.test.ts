import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { collect, connectClient, startTestServer } from '../../test/support/vitest.js';
import type { NotificationEvent } from './notifications.schema.js';

type Tracked = { id: string; data: NotificationEvent };

const alert = (title: string) => ({
  workspaceId: 'acme',
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

describe('notifications: a fresh subscription gets a resume point at once', () => {
  it('starts with a sync at the head, so a drop before any other event still resumes exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-sync-'));
    try {
      const first = await startTestServer({ sqliteFile: 'pulse.db', config: { dataDir: dir } });
      const port = first.port;
      await first.caller.notifications.send(alert('before'));
      const token = await first.token({ sub: 'bob', workspaces: { acme: 'member' } });
      // A long reconnect delay leaves a window in which events are published while bob is away.
      await using bob = connectClient(first, token, { retryDelayMs: () => 1500 });
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
      await vi.waitFor(() => expect(seen.all).toHaveLength(1));
      // History (the 'before' notification) is for list(); the stream starts at its head.
      expect(seen.all[0]).toMatchObject({
        id: '1',
        data: { type: 'sync', workspaceId: 'acme', headId: '1' },
      });

      await first.close({ graceMs: 0 });
      const second = await startTestServer({ sqliteFile: 'pulse.db', config: { dataDir: dir, port } });
      for (const title of ['a', 'b', 'c']) await second.caller.notifications.send(alert(title));
      // bob had received no notification before the drop, yet resumes from the sync's id.
      await vi.waitFor(() => expect(seen.items).toHaveLength(3), { timeout: 10_000 });
      await second.caller.notifications.send(alert('live'));
      await vi.waitFor(() => expect(seen.items).toHaveLength(4));
      expect(
        seen.items.map((e) => (e.data.type === 'notification' ? e.data.notification.title : e.data.type)),
      ).toEqual(['a', 'b', 'c', 'live']);
      expect(seen.items.map((e) => e.id)).toEqual(['2', '3', '4', '5']);
      await second.close({ graceMs: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
