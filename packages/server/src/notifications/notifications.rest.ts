import type { RestEndpoint } from '../infra/rest.js';

/** Notifications' REST path (ARCHITECTURE.md §6): the body is `notifications.send`'s input. */
export const notificationRestEndpoints: RestEndpoint[] = [
  {
    method: 'POST',
    path: '/realtime/notifications/send',
    procedure: 'notifications.send',
    type: 'mutation',
    summary: 'Send a notification to one user or a whole workspace (admin or service token)',
    tags: ['notifications'],
    input: (_p, body) => body,
  },
];
