import type { PresenceEntry } from '../../src/presence/presence.backend.js';

/** A socket-bound presence entry (online, no page or activity) of `userId` on `nodeId`, for backend tests. */
export const presenceEntry = (nodeId: string, userId: string, connectionId: string): PresenceEntry => ({
  connectionId,
  userId,
  name: userId,
  status: 'online',
  page: null,
  activity: null,
  connectedAt: Date.now(),
  updatedAt: Date.now(),
  nodeId,
  expiresAt: null,
});
