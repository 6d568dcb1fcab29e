import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { mintToken } from '../auth/token.js';
import type { AppRouter } from '../router.js';
import { attachPulse } from './attach.js';

const SECRET = 'attach-test-secret-long-enough-for-hs256-0123456789';

describe('attachPulse on a plain Node HTTP server', () => {
  it("serves Pulse beside the host's routes and the host's own WebSocket endpoint; close() leaves the host running", async () => {
    const server = createServer();
    const pulse = await attachPulse(server, {
      sqliteFile: ':memory:',
      config: { logLevel: 'silent', jwt: { secret: SECRET } },
    });
    // The host's own WebSocket endpoint on the same server.
    const hostWss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      if (req.url !== '/host-ws') return;
      hostWss.handleUpgrade(req, socket, head, (ws) => ws.send('hello from the host'));
    });
    server.on('request', (req, res) =>
      pulse.handler(req, res, () => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`host: ${req.url}`);
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await (await fetch(`http://${base}/anything`)).text()).toBe('host: /anything');
      expect((await fetch(`http://${base}/healthz`)).status).toBe(200);
      const token = await mintToken(pulse.config.jwt, { sub: 'alice', workspaces: { acme: 'member' } });
      const ws = createWSClient({
        url: `ws://${base}/trpc`,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: { token },
        retryDelayMs: () => 50,
      });
      const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client: ws })] });
      expect(await trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(0);

      const host = new WebSocket(`ws://${base}/host-ws`);
      const greeting = await new Promise<string>((resolve) =>
        host.once('message', (data) => resolve(String(data))),
      );
      expect(greeting).toBe('hello from the host');

      await pulse.close({ graceMs: 0 });
      ws.close();
      // Pulse is gone from the upgrade path; the host's server, routes and sockets are not.
      expect(server.listening).toBe(true);
      expect(host.readyState).toBe(WebSocket.OPEN);
      expect(await (await fetch(`http://${base}/after`)).text()).toBe('host: /after');
      expect(server.listenerCount('upgrade')).toBe(1);
      host.close();
      await vi.waitFor(() => expect(host.readyState).toBe(WebSocket.CLOSED));
    } finally {
      await pulse.close();
      hostWss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
