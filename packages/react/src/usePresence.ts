import type { PulseError } from '@pulse/client';
import type { PresenceEvent, UserPresence } from '@pulse/client';
import { skipToken } from '@tanstack/react-query';
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import type { PresencePatch } from './presence-reporter.js';
import { usePulseContext, useViewer } from './PulseProvider.js';
import { trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

export interface UsePresenceOptions {
  /** Time without input (ms) before the viewer is shown `away` (default: the provider's, 60 s). */
  idleMs?: number;
  /** Announce the viewer as online in this workspace (default true); false only watches. */
  announce?: boolean;
  /** Set false to pause (no subscription, no announcing). */
  enabled?: boolean;
}

export interface UsePresenceResult {
  /** Everyone online in the workspace (one entry per user, however many tabs), by name. */
  users: UserPresence[];
  /** The viewer's own presence, once the server confirmed it. */
  me: UserPresence | null;
  /** Changes the viewer's status, page or activity (merged with what was set before). */
  set: (patch: PresencePatch) => void;
  status: LiveStatus;
  error: PulseError | null;
}

/** Applies one presence event to the users map (snapshot replaces, diffs patch). */
export function applyPresenceEvent(
  users: ReadonlyMap<string, UserPresence>,
  event: PresenceEvent,
): Map<string, UserPresence> {
  switch (event.type) {
    case 'snapshot':
      return new Map(event.users.map((u) => [u.userId, u]));
    case 'join':
    case 'update':
      return new Map(users).set(event.user.userId, event.user);
    case 'leave': {
      const next = new Map(users);
      next.delete(event.userId);
      return next;
    }
    default:
      return assertNever(event);
  }
}

function assertNever(value: never): never {
  throw new Error(`Unexpected event: ${JSON.stringify(value)}`);
}

/**
 * Live presence of a workspace, and the viewer's own: announces the viewer `online`, shows them
 * `away` after `idleMs` without input or while the tab is hidden, back `online` on activity, and
 * re-announces after every reconnect.
 *
 * @example
 * ```tsx
 * function WhoIsHere({ workspaceId }: { workspaceId: string }) {
 *   const { users, me, set, status } = usePresence(workspaceId, { idleMs: 120_000 });
 *   return (
 *     <ul data-status={status}>
 *       {users.map((u) => <li key={u.userId}>{u.name} · {u.status}{u.userId === me?.userId && ' (you)'}</li>)}
 *       <button onClick={() => set({ activity: { kind: 'editing', target: 'post-42' } })}>Edit</button>
 *     </ul>
 *   );
 * }
 * ```
 */
export function usePresence(workspaceId: string, opts: UsePresenceOptions = {}): UsePresenceResult {
  const enabled = opts.enabled ?? true;
  const announce = enabled && (opts.announce ?? true);
  const context = usePulseContext();
  const connection = useConnectionState();
  const viewer = useViewer();
  const reporter = context.presenceReporter(workspaceId);
  const reported = useSyncExternalStore(reporter.subscribe, reporter.getSnapshot, reporter.getSnapshot);
  const [users, setUsers] = useState<{ workspaceId: string; map: Map<string, UserPresence> } | null>(null);

  useEffect(() => {
    if (!announce) return;
    return reporter.retain();
  }, [reporter, announce]);
  useEffect(() => {
    if (announce && opts.idleMs !== undefined) reporter.setIdleMs(opts.idleMs);
  }, [reporter, announce, opts.idleMs]);

  const subscription = trpc.presence.onChange.useSubscription(enabled ? { workspaceId } : skipToken, {
    onData: (event) =>
      setUsers((prev) => ({
        workspaceId,
        map: applyPresenceEvent(prev?.workspaceId === workspaceId ? prev.map : new Map(), event),
      })),
  });
  const current = users?.workspaceId === workspaceId ? users.map : null;
  const list = useMemo(
    () => [...(current?.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
    [current],
  );
  const meUserId = reported.me?.userId ?? viewer?.userId;
  const me = (meUserId ? current?.get(meUserId) : undefined) ?? reported.me;
  const set = useCallback((patch: PresencePatch) => reporter.update(patch), [reporter]);
  const subscriptionError = useSubscriptionRecovery(subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: current !== null,
    extraError: reported.error,
  });
  return { users: list, me: me ?? null, set, status, error };
}

/**
 * Reports the page the viewer is on (e.g. the router's pathname) as part of their presence.
 *
 * @example
 * ```tsx
 * const { pathname } = useLocation();
 * usePresencePage('acme', pathname);
 * ```
 */
export function usePresencePage(workspaceId: string, page: string): void {
  const reporter = usePulseContext().presenceReporter(workspaceId);
  // NOTE: the page is recorded before retaining, so the first announcement already carries it.
  useEffect(() => {
    reporter.update({ page });
  }, [reporter, page]);
  useEffect(() => reporter.retain(), [reporter]);
}
