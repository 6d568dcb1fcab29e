import { type PulseError, toPulseError } from '@pulse/client';
import type { Conversation, ConversationView, InboxEvent, Message, TypingEntry } from '@pulse/client';
import { getQueryKey } from '@trpc/react-query';
import {
  type InfiniteData,
  matchQuery,
  type QueryCacheNotifyEvent,
  type QueryClient,
  type QueryKey,
  skipToken,
  useQueryClient,
} from '@tanstack/react-query';
import { FeedLog } from './feed-log.js';
import { useCallback, useMemo, useRef, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';
import { useTyping } from './useTyping.js';

export interface UseInboxOptions<TSelected = ConversationView[]> {
  /** Only conversations with this status. */
  status?: Conversation['status'];
  /** Page size (default 20). */
  pageSize?: number;
  /** Set false to pause (no subscription, no query). */
  enabled?: boolean;
  /**
   * Picks what this component needs from the conversations (e.g. `(cs) => cs.filter((c) => c.escalatedAt).length`):
   * `conversations` is then its value, and the component re-renders only when that value changes
   * (compared structurally, as TanStack Query's `select`). Must not return `undefined`.
   */
  select?: (conversations: ConversationView[]) => TSelected;
}

export interface UseInboxResult<TSelected = ConversationView[]> {
  /** Conversations, most recent first, with the viewer's unread counts; kept live; or `select`'s value. */
  conversations: TSelected;
  fetchMore: () => void;
  hasMore: boolean;
  status: LiveStatus;
  error: PulseError | null;
}

const byRecent = (a: ConversationView, b: ConversationView) =>
  b.lastMessageAt.localeCompare(a.lastMessageAt) || b.id.localeCompare(a.id);

const noReceipts: Readonly<Record<string, string>> = {};
const noConversations: ConversationView[] = [];
const noMessages: Message[] = [];

/** Each item once (the first seen), in order. */
function uniqueById<T extends { id: string }>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(item.id) && Boolean(seen.add(item.id)));
}

/** A conversation's loaded messages in chronological order (pages run newest first; each page is chronological). */
function chronological(pages: readonly { items: Message[] }[] | undefined): Message[] {
  return uniqueById([...(pages ?? [])].reverse().flatMap((page) => page.items));
}

export interface UseConversationOptions<TSelected = Message[]> {
  /** Page size of `messages` and `fetchMore` (default 50). */
  pageSize?: number;
  /** Set false to pause (no subscription, no query, no typing); a null conversation id pauses too. */
  enabled?: boolean;
  /**
   * Picks what this component needs from the messages (e.g. `(ms) => ms.length`): `messages` is
   * then its value, and the component re-renders only when that value changes (compared
   * structurally, as TanStack Query's `select`). Must not return `undefined`.
   */
  select?: (messages: Message[]) => TSelected;
}

/** Pages of an inbox answer: `asOf` is the stream id they were read at (absent from older servers). */
type Pages<T> = InfiniteData<{ items: T[]; nextCursor: string | null; asOf?: string }, unknown>;

/** The oldest stream position among the pages, or undefined when one has none (an older server). */
function positionOf(data: Pages<unknown>): bigint | undefined {
  let min: bigint | undefined;
  for (const page of data.pages) {
    if (page.asOf === undefined) return undefined;
    const position = BigInt(page.asOf);
    if (min === undefined || position < min) min = position;
  }
  return min;
}

/** The pages moved to stream id `id` (those read before it). */
function movedTo<T>(pages: Pages<T>['pages'], id: bigint): Pages<T>['pages'] {
  return pages.map((page) =>
    page.asOf !== undefined && BigInt(page.asOf) < id ? { ...page, asOf: String(id) } : page,
  );
}

/** A conversation's pages with a stored message inserted (once, in event order). */
function messagesWith(data: Pages<Message>, message: Message): Pages<Message> {
  if (data.pages.some((page) => page.items.some((m) => m.id === message.id))) return data;
  const [newest, ...older] = data.pages;
  if (!newest) return data;
  const items = [...newest.items, message].sort(
    (a, b) => Number(a.eventId) - Number(b.eventId) || a.at.localeCompare(b.at),
  );
  return { ...data, pages: [{ ...newest, items }, ...older] };
}

/** Inserts a stored message into a conversation's cached pages (once, in event order). */
function insertIntoCache(
  utils: ReturnType<typeof trpc.useUtils>,
  query: { conversationId: string; limit: number },
  message: Message,
): void {
  if (message.conversationId !== query.conversationId) return;
  utils.inbox.messages.setInfiniteData(query, (data) =>
    data ? (messagesWith(data, message) as typeof data) : data,
  );
}

/** A conversation event of the inbox list (what changes a conversation's row). */
type ConversationEvent = Extract<InboxEvent, { conversation: unknown }>;

/**
 * The conversation list with one event applied: the conversation moves to its place with the
 * event's state; `countsAsUnread` adds one to its unread count. With a stream id, a list read at or
 * past it is left as it is (the event is in it) and the others move to it.
 */
function conversationsWith(
  data: Pages<ConversationView>,
  status: Conversation['status'] | undefined,
  id: bigint | null,
  event: ConversationEvent,
  countsAsUnread: boolean,
): Pages<ConversationView> {
  const position = positionOf(data);
  if (id !== null && position !== undefined && id <= position) return data;
  const conversation = event.conversation;
  let existing: ConversationView | undefined;
  let pages = data.pages.map((page) => ({
    ...page,
    items: page.items.filter((c) => {
      if (c.id !== conversation.id) return true;
      existing = c;
      return false;
    }),
  }));
  if (id !== null) pages = movedTo(pages, id);
  const matches = !status || conversation.status === status;
  if (!matches) return { ...data, pages };
  const unreadCount = (existing?.unreadCount ?? 0) + (countsAsUnread ? 1 : 0);
  const updated: ConversationView = { ...conversation, unreadCount };
  const [first, ...rest] = pages;
  if (!first) return data;
  return { ...data, pages: [{ ...first, items: [updated, ...first.items].sort(byRecent) }, ...rest] };
}

/**
 * Completes an inbox answer as it lands (see `useNotifications`' `completeAnswer`): the logged live
 * events past its `asOf` are applied on top of it; an answer older than the log is read again.
 */
function completeInboxAnswer<T>(
  queryClient: QueryClient,
  queryKey: QueryKey,
  event: QueryCacheNotifyEvent,
  log: FeedLog<InboxEvent>,
  apply: (data: Pages<T>, id: bigint, logged: InboxEvent) => Pages<T>,
) {
  if (event.type !== 'updated' || event.action.type !== 'success' || event.action.manual) return;
  if (!matchQuery({ queryKey, exact: true }, event.query)) return;
  const data = event.action.data as Pages<T> | undefined;
  const position = data ? positionOf(data) : undefined;
  if (!data || position === undefined) return;
  const entries = log.after(position);
  if (!entries) return void queryClient.invalidateQueries({ queryKey, exact: true });
  let next = data;
  for (const { id, value } of entries) next = apply(next, id, value);
  if (next !== data) queryClient.setQueryData(queryKey, next);
}

/** Live inbox events a shared subscription keeps for the answers on their way. */
const INBOX_LOG_SIZE = 256;

/**
 * The workspace's inbox, live: new conversations and messages move conversations to the top,
 * status/assignee changes and SLA escalations update them in place; a `reset` refetches.
 *
 * @example
 * ```tsx
 * const { conversations, hasMore, fetchMore } = useInbox('acme', { status: 'open' });
 * return conversations.map((c) => <Row key={c.id} title={c.contact.name} unread={c.unreadCount} late={!!c.escalatedAt} />);
 * ```
 */
// NOTE: overloads, not only a defaulted generic: `ReturnType<typeof hook>` (used by apps to name
// the result) reads the last overload, so it stays the default result instead of `TSelected = unknown`.
export function useInbox<TSelected>(
  workspaceId: string,
  opts: UseInboxOptions<TSelected> & { select: (conversations: ConversationView[]) => TSelected },
): UseInboxResult<TSelected>;
export function useInbox(workspaceId: string, opts?: UseInboxOptions): UseInboxResult;
export function useInbox<TSelected = ConversationView[]>(
  workspaceId: string,
  opts: UseInboxOptions<TSelected> = {},
): UseInboxResult<TSelected> {
  const utils = trpc.useUtils();
  const queryClient = useQueryClient();
  const { client, subscriptions, viewer } = usePulseContext();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const input = { workspaceId, status: opts.status, limit: opts.pageSize ?? 20 };

  // NOTE: one subscription per workspace, status filter and page size, whose events are applied to
  // that list's cache once, whatever the number of hooks reading it.
  const entry = enabled
    ? subscriptions.get(subscriptionKey('inbox.onEvent', input), () => {
        const query = input;
        const queryKey = getQueryKey(trpc.inbox.conversations, query, 'infinite');
        const seenMessages = new Set<string>();
        const log = new FeedLog<InboxEvent>(INBOX_LOG_SIZE);
        /** An answer's unread counts hold the messages at or before its `asOf`; re-applied ones are past it. */
        const reapply = (data: Pages<ConversationView>, id: bigint, event: InboxEvent) =>
          'conversation' in event
            ? conversationsWith(
                data,
                query.status,
                id,
                event,
                event.type === 'message' && event.message.authorId !== viewer.get()?.userId,
              )
            : data;
        const onEvent = ({ id: trackedId, data: event }: { id: string; data: InboxEvent }) => {
          // A sync only carries the resume point (the client keeps it); nothing to show.
          if (event.type === 'sync') return;
          if (event.type === 'reset') {
            seenMessages.clear();
            void utils.inbox.conversations.invalidate({ workspaceId: query.workspaceId });
            return;
          }
          const viewerId = viewer.get()?.userId;
          if (event.type === 'read') {
            // The viewer read in another tab or device: unread counts come from the server.
            if (event.userId === viewerId)
              void utils.inbox.conversations.invalidate({ workspaceId: query.workspaceId });
            return;
          }
          const id = BigInt(trackedId);
          log.add(id, event);
          // NOTE: with `asOf` the position decides what is counted (events at or before it are in the
          // answer); from an older server, each message is counted once by id.
          const seenBefore = event.type === 'message' && seenMessages.has(event.message.id);
          if (event.type === 'message') seenMessages.add(event.message.id);
          utils.inbox.conversations.setInfiniteData(query, (data) => {
            if (!data) return data;
            const countsAsUnread =
              event.type === 'message' &&
              event.message.authorId !== viewerId &&
              (positionOf(data) !== undefined || !seenBefore);
            return conversationsWith(data, query.status, id, event, countsAsUnread) as typeof data;
          });
        };
        return {
          open: (handlers) => {
            const stopCompleting = queryClient
              .getQueryCache()
              .subscribe((event) => completeInboxAnswer(queryClient, queryKey, event, log, reapply));
            const { unsubscribe } = client.trpc.inbox.onEvent.subscribe(
              { workspaceId: query.workspaceId },
              { ...handlers, onData: (tracked) => handlers.onData(tracked) },
            );
            return () => {
              stopCompleting();
              unsubscribe();
            };
          },
          onEvent,
          onRestart: () => void utils.inbox.conversations.invalidate({ workspaceId: query.workspaceId }),
        };
      })
    : null;
  const shared = useSharedSubscription(entry, () => null);
  const { select } = opts;
  // NOTE: flattened and selected in TanStack Query's `select` (structural sharing: an equal value
  // keeps its reference, so a selecting component skips re-renders that do not change it).
  const selectConversations = useCallback(
    (data: { pages: readonly { items: ConversationView[] }[] }): TSelected => {
      const conversations = uniqueById(data.pages.flatMap((page) => page.items));
      return select ? select(conversations) : (conversations as TSelected);
    },
    [select],
  );
  // NOTE: read once the subscription is live, so nothing published in between is missed.
  const list = trpc.inbox.conversations.useInfiniteQuery(input, {
    getNextPageParam: (page) => page.nextCursor ?? undefined,
    enabled: enabled && shared.started,
    // tRPC types `select` as returning pages; it returns what TanStack Query's `select` returns.
    select: selectConversations as never,
  });

  const selected = list.data as TSelected | undefined;
  const conversations = useMemo(
    () => selected ?? (select ? select(noConversations) : (noConversations as TSelected)),
    [selected, select],
  );
  const { fetchNextPage } = list;
  const fetchMore = useCallback(() => void fetchNextPage(), [fetchNextPage]);
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? list.error,
    hasData: list.data !== undefined,
  });
  return { conversations, fetchMore, hasMore: list.hasNextPage, status, error };
}

/** A reply sent optimistically: shown at once, replaced by the stored message when it lands. */
export interface PendingMessage {
  clientMessageId: string;
  conversationId: string;
  body: string;
  status: 'sending' | 'failed';
  error: PulseError | null;
}

export interface UseConversationResult<TSelected = Message[]> {
  /** Messages in chronological order (older pages loaded with `fetchMore`), live; or `select`'s value. */
  messages: TSelected;
  /** Replies not yet confirmed (sending or failed; `retry` resends with the same clientMessageId). */
  pending: PendingMessage[];
  /** Sends a reply: optimistic, idempotent by its clientMessageId (generated unless given). */
  send: (body: string, opts?: { clientMessageId?: string }) => Promise<Message | null>;
  /** Resends a failed reply with its original clientMessageId (never a duplicate). */
  retry: (clientMessageId: string) => Promise<Message | null>;
  /** Marks everything up to `upToMessageId` (default: the newest message) read. */
  markRead: (upToMessageId?: string) => void;
  /** Read receipts: user id → the message id they have read up to (live). */
  readBy: Readonly<Record<string, string>>;
  /** Others typing in this conversation, and the viewer's throttled typing reporter. */
  typing: TypingEntry[];
  setTyping: ReturnType<typeof useTyping>['setTyping'];
  fetchMore: () => void;
  hasMore: boolean;
  status: LiveStatus;
  error: PulseError | null;
}

const newClientMessageId = () =>
  typeof crypto !== 'undefined' && 'randomUUID' in crypto
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

/**
 * One conversation, live: messages (chronological, paged back with `fetchMore`), optimistic and
 * idempotent `send`, `markRead`, read receipts and typing.
 *
 * @example
 * ```tsx
 * const { messages, pending, send, markRead, typing, setTyping } = useConversation('acme', conversationId);
 * useEffect(() => markRead(), [messages.length]);
 * return (
 *   <>
 *     {messages.map((m) => <Bubble key={m.id} mine={m.direction === 'outbound'}>{m.body}</Bubble>)}
 *     {pending.map((p) => <Bubble key={p.clientMessageId} faded>{p.body}</Bubble>)}
 *     {typing.length > 0 && <small>{typing[0]!.name} is typing…</small>}
 *     <Composer onChange={() => setTyping(true)} onSubmit={(text) => { setTyping(false); void send(text); }} />
 *   </>
 * );
 * ```
 */
// NOTE: overloads, as on useInbox (`ReturnType<typeof useConversation>` is the default result).
export function useConversation<TSelected>(
  workspaceId: string,
  conversationId: string | null | undefined,
  opts: UseConversationOptions<TSelected> & { select: (messages: Message[]) => TSelected },
): UseConversationResult<TSelected>;
export function useConversation(
  workspaceId: string,
  conversationId: string | null | undefined,
  opts?: UseConversationOptions,
): UseConversationResult;
export function useConversation<TSelected = Message[]>(
  workspaceId: string,
  conversationId: string | null | undefined,
  opts: UseConversationOptions<TSelected> = {},
): UseConversationResult<TSelected> {
  const utils = trpc.useUtils();
  const queryClient = useQueryClient();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const activeId = enabled ? conversationId : null;
  const typing = useTyping(workspaceId, activeId);
  const input = activeId ? { conversationId: activeId, limit: opts.pageSize ?? 50 } : null;
  const { client, subscriptions } = usePulseContext();
  const [pending, setPending] = useState<PendingMessage[]>([]);
  const [actionError, setActionError] = useState<PulseError | null>(null);
  const inputRef = useRef(input);
  inputRef.current = input;

  const insertMessage = useCallback(
    (message: Message) => {
      const query = inputRef.current;
      if (!query) return;
      insertIntoCache(utils, query, message);
      if (message.clientMessageId)
        setPending((prev) => prev.filter((p) => p.clientMessageId !== message.clientMessageId));
    },
    [utils],
  );

  // NOTE: one subscription per conversation (and page size): the shared part inserts messages into
  // the cache and folds read receipts once; each hook drops its own optimistic sends as they land.
  const entry = input
    ? subscriptions.get(subscriptionKey('inbox.onEvent', { workspaceId, ...input }), () => {
        const query = input;
        const queryKey = getQueryKey(trpc.inbox.messages, query, 'infinite');
        const log = new FeedLog<InboxEvent>(INBOX_LOG_SIZE);
        const reapply = (data: Pages<Message>, _id: bigint, event: InboxEvent) =>
          event.type === 'message' && event.message.conversationId === query.conversationId
            ? messagesWith(data, event.message)
            : data;
        return {
          open: (handlers) => {
            // NOTE: a messages answer read before a message landed gets it back (messages never
            // change, so inserting by id is the whole reconciliation).
            const stopCompleting = queryClient
              .getQueryCache()
              .subscribe((event) => completeInboxAnswer(queryClient, queryKey, event, log, reapply));
            const { unsubscribe } = client.trpc.inbox.onEvent.subscribe(
              { workspaceId, conversationId: query.conversationId },
              { ...handlers, onData: (tracked) => handlers.onData(tracked.data) },
            );
            return () => {
              stopCompleting();
              unsubscribe();
            };
          },
          onEvent: (event: InboxEvent) => {
            if (event.type === 'message') {
              log.add(BigInt(event.message.eventId), event);
              insertIntoCache(utils, query, event.message);
            } else if (event.type === 'reset')
              void utils.inbox.messages.invalidate({ conversationId: query.conversationId });
          },
          reduce: (readBy: Record<string, string> | null, event: InboxEvent) =>
            event.type === 'read' ? { ...readBy, [event.userId]: event.upToMessageId } : (readBy ?? {}),
          onRestart: () => void utils.inbox.messages.invalidate({ conversationId: query.conversationId }),
        };
      })
    : null;
  const shared = useSharedSubscription(
    entry,
    (readBy) => readBy ?? noReceipts,
    (event) => {
      const clientMessageId = event.type === 'message' ? event.message.clientMessageId : undefined;
      if (clientMessageId) setPending((prev) => prev.filter((p) => p.clientMessageId !== clientMessageId));
    },
  );
  const { select } = opts;
  // NOTE: ordered and selected in TanStack Query's `select` (structural sharing, as in useInbox).
  const selectMessages = useCallback(
    (data: { pages: readonly { items: Message[] }[] }): TSelected => {
      const messages = chronological(data.pages);
      return select ? select(messages) : (messages as TSelected);
    },
    [select],
  );
  const list = trpc.inbox.messages.useInfiniteQuery(input ?? skipToken, {
    getNextPageParam: (page) => page.nextCursor ?? undefined,
    enabled: !!input && shared.started,
    // tRPC types `select` as returning pages; it returns what TanStack Query's `select` returns.
    select: selectMessages as never,
  });

  const sendMutation = trpc.inbox.send.useMutation();
  const { mutateAsync: sendAsync } = sendMutation;
  const deliver = useCallback(
    async (entry: PendingMessage): Promise<Message | null> => {
      setPending((prev) => [
        ...prev.filter((p) => p.clientMessageId !== entry.clientMessageId),
        { ...entry, status: 'sending', error: null },
      ]);
      try {
        const result = await sendAsync({
          conversationId: entry.conversationId,
          body: entry.body,
          clientMessageId: entry.clientMessageId,
        });
        insertMessage(result.message);
        setPending((prev) => prev.filter((p) => p.clientMessageId !== entry.clientMessageId));
        return result.message;
      } catch (cause) {
        const error = toPulseError(cause);
        setPending((prev) =>
          prev.map((p) =>
            p.clientMessageId === entry.clientMessageId ? { ...p, status: 'failed', error } : p,
          ),
        );
        return null;
      }
    },
    [sendAsync, insertMessage],
  );
  const send = useCallback(
    (body: string, sendOpts: { clientMessageId?: string } = {}) => {
      if (!conversationId) return Promise.resolve(null);
      return deliver({
        clientMessageId: sendOpts.clientMessageId ?? newClientMessageId(),
        conversationId,
        body,
        status: 'sending',
        error: null,
      });
    },
    [conversationId, deliver],
  );
  const pendingRef = useRef(pending);
  pendingRef.current = pending;
  const retry = useCallback(
    (clientMessageId: string) => {
      const entry = pendingRef.current.find((p) => p.clientMessageId === clientMessageId);
      return entry ? deliver(entry) : Promise.resolve(null);
    },
    [deliver],
  );

  const selected = list.data as TSelected | undefined;
  const messages = useMemo(
    () => selected ?? (select ? select(noMessages) : (noMessages as TSelected)),
    [selected, select],
  );
  const markReadMutation = trpc.inbox.markRead.useMutation();
  const { mutate: markReadMutate } = markReadMutation;
  const markRead = useCallback(
    (upToMessageId?: string) => {
      // NOTE: the newest message is read from the cache (`messages` may be `select`'s value).
      const query = inputRef.current;
      const target =
        upToMessageId ??
        (query && chronological(utils.inbox.messages.getInfiniteData(query)?.pages).at(-1)?.id);
      if (!conversationId || !target) return;
      markReadMutate(
        { conversationId, upToMessageId: target },
        {
          onSuccess: () => {
            setActionError(null);
            void utils.inbox.conversations.invalidate({ workspaceId });
          },
          onError: (error) => setActionError(toPulseError(error)),
        },
      );
    },
    [conversationId, markReadMutate, utils, workspaceId],
  );

  const { fetchNextPage } = list;
  const fetchMore = useCallback(() => void fetchNextPage(), [fetchNextPage]);
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? list.error,
    hasData: list.data !== undefined,
    extraError: actionError,
  });
  return {
    messages,
    pending: pending.filter((p) => p.conversationId === conversationId),
    send,
    retry,
    markRead,
    readBy: shared.value,
    typing: typing.typing,
    setTyping: typing.setTyping,
    fetchMore,
    hasMore: list.hasNextPage,
    status,
    error,
  };
}
