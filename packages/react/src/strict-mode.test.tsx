import { cleanup, render, waitFor } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useDashboard } from './useDashboard.js';
import { useConversation, useInbox } from './useInbox.js';
import { useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';

afterEach(() => cleanup());

function Everything({ conversationId }: { conversationId: string }) {
  const hooks = [
    usePresence('acme'),
    useNotifications('acme'),
    useDashboard('acme', { kinds: ['metric'] }),
    useInbox('acme'),
    useConversation('acme', conversationId),
  ];
  return <p>{hooks.map((h) => h.status).join(',')}</p>;
}

describe('StrictMode', () => {
  it('every hook mounted twice leaves one socket and exactly one live subscription per hook', async () => {
    await using server = await startServer();
    const { conversation } = await server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'x',
      externalId: 't1',
      contact: { id: 'c1', name: 'Carla' },
      body: 'hi',
    });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const view = render(
      <StrictMode>
        <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
          <Everything conversationId={conversation.id} />
        </PulseProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(view.container.textContent).toBe('live,live,live,live,live'));
    await waitFor(() =>
      expect(server.stats().transport).toMatchObject({
        connections: 1,
        subscriptions: 6,
        subscriptionsByPath: {
          'presence.onChange': 1,
          'notifications.onFeed': 1,
          'dashboard.onUpdate': 1,
          // useInbox and useConversation: one each.
          'inbox.onEvent': 2,
          // useConversation's typing.
          'presence.onTyping': 1,
        },
      }),
    );
    view.unmount();
    await waitFor(() => expect(server.stats().transport).toMatchObject({ connections: 0, subscriptions: 0 }));
  });
});
