import { type PulseError, toPulseError } from '@pulse/client';
import type { TypingEntry, TypingEvent } from '@pulse/client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext, useViewer } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { useConnectionState } from './useConnectionStatus.js';

export interface UseTypingOptions<TSelected = TypingEntry[]> {
  /** Set false to pause (no subscription); a null conversation id pauses too. */
  enabled?: boolean;
  /** Picks what this component needs (e.g. `(typing) => typing.length > 0`): it re-renders only when that changes. */
  select?: (typing: TypingEntry[]) => TSelected;
}

const nobody: TypingEntry[] = [];

/** While typing, `presence.typing` is re-sent at most this often (the server expires it by itself). */
export const TYPING_THROTTLE_MS = 2_000;

export interface UseTypingResult<TSelected = TypingEntry[]> {
  /** Others typing in this conversation now (never the viewer), or `select`'s value. */
  typing: TSelected;
  /**
   * Call with `true` on every keystroke (sent at most once per 2 s) and `false` when the user
   * stops or sends (sent at once).
   */
  setTyping: (isTyping: boolean) => void;
  status: LiveStatus;
  error: PulseError | null;
}

/** Applies one typing event to the map keyed by user id. */
export function applyTypingEvent(
  typing: ReadonlyMap<string, TypingEntry>,
  event: TypingEvent,
): Map<string, TypingEntry> {
  if (event.type === 'typing_snapshot') return new Map(event.typing.map((t) => [t.userId, t]));
  const next = new Map(typing);
  if (event.isTyping)
    next.set(event.userId, { conversationId: event.conversationId, userId: event.userId, name: event.name });
  else next.delete(event.userId);
  return next;
}

/**
 * Who else is typing in a conversation, and a throttled `setTyping` for the viewer. Typing stops
 * by itself on the server after a few seconds without a refresh, and at once on unmount.
 *
 * @example
 * ```tsx
 * const { typing, setTyping } = useTyping('acme', conversationId);
 * <textarea onChange={() => setTyping(true)} onBlur={() => setTyping(false)} />
 * {typing.length > 0 && <small>{typing.map((t) => t.name).join(', ')} typing…</small>}
 * ```
 */
export function useTyping<TSelected = TypingEntry[]>(
  workspaceId: string,
  conversationId: string | null | undefined,
  opts: UseTypingOptions<TSelected> = {},
): UseTypingResult<TSelected> {
  const { client, subscriptions } = usePulseContext();
  const connection = useConnectionState();
  const viewer = useViewer();
  const key = conversationId ? `${workspaceId}\u0000${conversationId}` : null;
  const [sendError, setSendError] = useState<PulseError | null>(null);
  const input = conversationId ? { workspaceId, conversationId } : null;
  const entry =
    input && (opts.enabled ?? true)
      ? subscriptions.get(subscriptionKey('presence.onTyping', input), () => ({
          open: (handlers) => client.trpc.presence.onTyping.subscribe(input, handlers).unsubscribe,
          reduce: (state: Map<string, TypingEntry> | null, event: TypingEvent) =>
            applyTypingEvent(state ?? new Map(), event),
        }))
      : null;
  const viewerId = viewer?.userId;
  const { select } = opts;
  const shared = useSharedSubscription(entry, (state) => {
    const others = state ? [...state.values()].filter((t) => t.userId !== viewerId) : nobody;
    return select ? select(others) : (others as TSelected);
  });

  const sent = useRef<{ key: string; at: number } | null>(null);
  const send = useCallback(
    (target: { workspaceId: string; conversationId: string }, isTyping: boolean) => {
      client.trpc.presence.typing.mutate({ ...target, isTyping }).then(
        () => setSendError(null),
        (error: unknown) => setSendError(toPulseError(error)),
      );
    },
    [client],
  );
  const setTyping = useCallback(
    (isTyping: boolean) => {
      if (!key || !conversationId) return;
      const now = Date.now();
      if (isTyping) {
        if (sent.current?.key === key && now - sent.current.at < TYPING_THROTTLE_MS) return;
        sent.current = { key, at: now };
        send({ workspaceId, conversationId }, true);
      } else if (sent.current?.key === key) {
        sent.current = null;
        send({ workspaceId, conversationId }, false);
      }
    },
    [key, workspaceId, conversationId, send],
  );
  // Leaving the conversation (or unmounting) while typing says so at once.
  useEffect(() => {
    if (!key || !conversationId) return;
    return () => {
      if (sent.current?.key !== key) return;
      sent.current = null;
      send({ workspaceId, conversationId }, false);
    };
  }, [key, workspaceId, conversationId, send]);

  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: shared.hasData,
    extraError: sendError,
  });
  return { typing: shared.value, setTyping, status, error };
}
