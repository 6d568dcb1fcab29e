import type { Notification } from '@pulse/client';
import { PulseProvider, type RouterOutputs, trpc, useConnectionStatus, useNotifications } from '@pulse/react';

// The URL of a Pulse node and a token for the viewer, from the environment at build time.
const url = import.meta.env.VITE_PULSE_URL as string;
const token = import.meta.env.VITE_PULSE_TOKEN as string;

function Bell() {
  const { items, unreadCount, status } = useNotifications('acme');
  const connection = useConnectionStatus();
  // Types flow from the server's router into the app without @pulse/server installed.
  const online = trpc.presence.list.useQuery({ workspaceId: 'acme' });
  const first: Notification | undefined = items[0];
  const unread: RouterOutputs['notifications']['unreadCount'] = unreadCount;
  // NOTE: the app uses Vite's `skipLibCheck: true`, so a declaration that failed to resolve would
  // quietly become `any`; these lines only compile while the router's types are real.
  // @ts-expect-error workspaceId is a string
  trpc.presence.list.useQuery({ workspaceId: 42 }, { enabled: false });
  // @ts-expect-error no such procedure
  trpc.presence.nope.useQuery();
  return (
    <section>
      <p id="status">{status}</p>
      <p id="connection">{connection.status}</p>
      <p id="unread">{unread}</p>
      <p id="online">{online.data?.length ?? 0}</p>
      <p id="first">{first?.title ?? ''}</p>
      <ul id="items">
        {items.map((n) => (
          <li key={n.id}>{n.title}</li>
        ))}
      </ul>
    </section>
  );
}

export function App() {
  return (
    <PulseProvider url={url} token={token}>
      <Bell />
    </PulseProvider>
  );
}
