import type { PulseClient, PulseError } from '@pulse/client';
import type { TRPCClient } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { useRef } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { useConnectionState } from './useConnectionStatus.js';

type ChannelsOf<TRouter extends AnyTRPCRouter> =
  TRPCClient<TRouter> extends { channels: infer C } ? C : never;

/** Names of the channels an app's router serves under `channels` (`channelRouter([...])`). */
export type ChannelName<TRouter extends AnyTRPCRouter> = keyof ChannelsOf<TRouter> & string;

type SubscribeOf<
  TRouter extends AnyTRPCRouter,
  N extends ChannelName<TRouter>,
> = ChannelsOf<TRouter>[N] extends {
  subscribe: { subscribe: infer S };
}
  ? S extends (input: infer I, opts: infer O) => unknown
    ? { input: I; opts: O }
    : never
  : never;

/** What a channel's `subscribe` takes, without `lastEventId` (useChannel keeps it): `{ workspaceId, input }`. */
export type ChannelSubscribeInput<TRouter extends AnyTRPCRouter, N extends ChannelName<TRouter>> = Omit<
  SubscribeOf<TRouter, N>['input'],
  'lastEventId'
>;

/** Every message of a channel's subscription: its events and, on a durable channel, `sync` / `reset`. */
export type ChannelMessageFor<TRouter extends AnyTRPCRouter, N extends ChannelName<TRouter>> = SubscribeOf<
  TRouter,
  N
>['opts'] extends { onData?: (value: infer V) => void }
  ? // NOTE: a durable channel yields tracked `{ id, data }`; an ephemeral one the events (with `type`).
    V extends { type: string }
    ? V
    : V extends { data: infer D }
      ? D
      : never
  : never;

/** One event of a channel as subscribers receive it (`{ type: 'event', data, input, from, at… }`). */
export type ChannelEventFor<TRouter extends AnyTRPCRouter, N extends ChannelName<TRouter>> = Extract<
  ChannelMessageFor<TRouter, N>,
  { type: 'event' }
>;

export interface UseChannelOptions<TEvent> {
  /** Called with every real event (never `sync` / `reset`), once per event per hook. */
  onEvent?: (event: TEvent) => void;
  /**
   * Called when the server answered `reset` (the resume point fell out of the retention window):
   * refetch whatever the channel feeds, then carry on with the events that follow.
   */
  onReset?: () => void;
  /** Set false to pause (no subscription). */
  enabled?: boolean;
}

export interface UseChannelResult {
  /**
   * `live` once the server acknowledged the subscription (a `sync` counts as live), `connecting`
   * before, `reconnecting` while the socket is down (resumed from `lastEventId`), `offline`,
   * `error` when the server refused it (e.g. `authorize` said no: FORBIDDEN in `error`).
   */
  status: LiveStatus;
  error: PulseError | null;
  /** The id of the last event (or sync) of this (channel, workspace, key), kept across remounts. */
  lastEventId: string | null;
  /** How many `reset`s this hook's subscription received (each one called `onReset`). */
  resets: number;
}

interface TrackedMessage {
  id: string | undefined;
  data: { type: string };
}

interface ChannelState {
  lastEventId: string | null;
  resets: number;
}

// NOTE: resume points live per client (one per provider), outside the shared subscription, so a
// channel read again after every reader unmounted resumes where it stopped instead of starting at
// the head (the shared entry itself is dropped with its last reader).
const resumePoints = new WeakMap<PulseClient, Map<string, string>>();
const maxResumePoints = 1_000;

function resumePointsOf(client: PulseClient): Map<string, string> {
  let points = resumePoints.get(client);
  if (!points) {
    points = new Map();
    resumePoints.set(client, points);
  }
  return points;
}

/**
 * A durable channel yields `tracked(id, message)` (`{ id, data }` on the client), an ephemeral one
 * the events themselves (they carry `type`).
 */
function asTracked(value: unknown): TrackedMessage {
  const message = value as TrackedMessage | TrackedMessage['data'];
  return 'type' in message ? { id: undefined, data: message } : message;
}

type SubscribeFn = (
  input: unknown,
  opts: { onStarted(): void; onData(value: unknown): void; onError(error: unknown): void },
) => { unsubscribe(): void };

function channelSubscribe(client: PulseClient, name: string): SubscribeFn {
  // NOTE: the provider's client is typed with Pulse's own router; an app's channels are procedures
  // of the app's router on the same socket, reached through the same proxy by path.
  const channels = (
    client.trpc as unknown as Record<string, Record<string, { subscribe: { subscribe: SubscribeFn } }>>
  ).channels;
  const procedure = channels?.[name]?.subscribe;
  if (!procedure) throw new Error(`useChannel: no channel "${name}" on the client`);
  return procedure.subscribe;
}

/** `useChannel` typed with the app's router (see `createPulseHooks`). */
export type TypedUseChannel<TRouter extends AnyTRPCRouter> = <N extends ChannelName<TRouter>>(
  name: N,
  input: ChannelSubscribeInput<TRouter, N>,
  opts?: UseChannelOptions<ChannelEventFor<TRouter, N>>,
) => UseChannelResult;

/**
 * Subscribes to the channel `name` (served as `channels.<name>.subscribe`) for one topic:
 * every hook with the same channel and input shares one server subscription; the last event id
 * is kept per (channel, workspace, key) and sent as `lastEventId` when it opens again, so a
 * remount or a dropped connection resumes with nothing lost or doubled.
 *
 * @example
 * ```tsx
 * const { useChannel } = createPulseHooks<AppRouter>(); // see createPulseHooks.ts
 * const { status } = useChannel('comments', { workspaceId: 'acme', input: { postId } }, {
 *   onEvent: (event) => addComment(event.data),
 *   onReset: () => refetchComments(),
 * });
 * ```
 */
export function useChannelUntyped(
  name: string,
  input: object,
  opts: UseChannelOptions<never> = {},
): UseChannelResult {
  const { client, subscriptions } = usePulseContext();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const key = subscriptionKey(`channels.${name}.subscribe`, input);
  const points = resumePointsOf(client);
  const entry = enabled
    ? subscriptions.get<TrackedMessage, ChannelState>(key, () => {
        const base = input as Record<string, unknown>;
        const subscribe = channelSubscribe(client, name);
        return {
          open: (handlers) =>
            subscribe(
              { ...base, lastEventId: points.get(key) ?? null },
              { ...handlers, onData: (value) => handlers.onData(asTracked(value)) },
            ).unsubscribe,
          onEvent: (message) => {
            if (message.id === undefined) return;
            // NOTE: newest last, at most maxResumePoints topics per client (the oldest is forgotten:
            // reading it again starts at the head, with a `sync`).
            points.delete(key);
            points.set(key, message.id);
            if (points.size > maxResumePoints) points.delete(points.keys().next().value as string);
          },
          reduce: (state, message) => ({
            lastEventId: message.id ?? state?.lastEventId ?? null,
            resets: (state?.resets ?? 0) + (message.data.type === 'reset' ? 1 : 0),
          }),
        };
      })
    : null;
  const handlers = useRef(opts);
  handlers.current = opts;
  const shared = useSharedSubscription(
    entry,
    (state) => state,
    (message) => {
      if (message.data.type === 'event') {
        handlers.current.onEvent?.(message.data as never);
      } else if (message.data.type === 'reset') {
        handlers.current.onReset?.();
      }
      // `sync` only carries the resume point (kept above): nothing to hand over.
    },
  );
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError,
    hasData: shared.started || shared.hasData,
  });
  return {
    status: enabled ? status : 'offline',
    error,
    lastEventId: shared.value?.lastEventId ?? points.get(key) ?? null,
    resets: shared.value?.resets ?? 0,
  };
}
