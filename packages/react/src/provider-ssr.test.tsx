// @vitest-environment node
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { fastClientOptions, NodeWebSocket, startServer, testClient } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';

function Page() {
  const presence = usePresence('acme');
  const notifications = useNotifications('acme');
  const connection = useConnectionStatus();
  return (
    <main>
      {presence.status}/{notifications.status}/{connection.status}/{presence.users.length}
    </main>
  );
}

describe('PulseProvider on the server (SSR)', () => {
  it('renderToString neither throws nor opens a socket', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    let opened = 0;
    class CountingWebSocket extends NodeWebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        opened += 1;
      }
    }
    const html = [1, 2, 3].map(() =>
      renderToString(
        <PulseProvider
          url={server.url}
          token={token}
          clientOptions={{ ...fastClientOptions, WebSocket: CountingWebSocket }}
        >
          <Page />
        </PulseProvider>,
      ),
    );
    expect(html[0]).toBe(
      '<main>connecting<!-- -->/<!-- -->connecting<!-- -->/<!-- -->connecting<!-- -->/<!-- -->0</main>',
    );
    // A full round trip through the server after the renders: a socket they had started would be
    // counted by now (construction is synchronous in ws) and connected before this probe's.
    await using probe = testClient(server.url, token);
    expect(await probe.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
    expect(opened).toBe(0);
    // The probe's own socket only.
    expect(server.stats().transport.connections).toBe(1);
  });
});
