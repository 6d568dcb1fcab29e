import type { PulseError } from '@pulse/client';
import type { AppRouter } from '@pulse/client';
import type { inferRouterOutputs } from '@trpc/server';
import { describe, expectTypeOf, it } from 'vitest';
import type { LiveStatus } from './live-status.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useDashboard, useDashboardHistory } from './useDashboard.js';
import { useConversation, useInbox } from './useInbox.js';
import { useNotificationPreferences } from './useNotificationPreferences.js';
import { type NotificationTarget, useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';
import { useTyping } from './useTyping.js';

// Hook results carry the server's own types (inferred from AppRouter), never copies.
type Out = inferRouterOutputs<AppRouter>;
type Tracked<T> = T extends AsyncIterable<infer U> ? (U extends { data: infer D } ? D : U) : never;

describe('hook result types come from the server router', () => {
  it('usePresence', () => {
    const r = usePresence('acme');
    expectTypeOf(r.users).toEqualTypeOf<Out['presence']['list']>();
    expectTypeOf(r.me).toEqualTypeOf<Out['presence']['list'][number] | null>();
    expectTypeOf(r.status).toEqualTypeOf<LiveStatus>();
    expectTypeOf(r.error).toEqualTypeOf<PulseError | null>();
    expectTypeOf(r.set).parameter(0).toHaveProperty('status').toEqualTypeOf<'online' | 'away' | undefined>();
    // @ts-expect-error "offline" is not something a client may claim
    r.set({ status: 'offline' });
    // @ts-expect-error activity kinds are the server's enum
    r.set({ activity: { kind: 'sleeping' } });
  });

  it('useTyping', () => {
    const r = useTyping('acme', 'c1');
    type TypingEvent = Tracked<Out['presence']['onTyping']>;
    expectTypeOf(r.typing).toEqualTypeOf<Extract<TypingEvent, { type: 'typing_snapshot' }>['typing']>();
    expectTypeOf(r.setTyping).parameters.toEqualTypeOf<[boolean]>();
  });

  it('useNotifications', () => {
    const r = useNotifications('acme');
    expectTypeOf(r.items).toEqualTypeOf<Out['notifications']['list']['items']>();
    expectTypeOf(r.unreadCount).toEqualTypeOf<Out['notifications']['unreadCount']>();
    expectTypeOf(r.unseenCount).toEqualTypeOf<Out['notifications']['counts']['unseen']>();
    // markRead still takes the ids it always took, and now also "everything (of some kinds) up to".
    expectTypeOf(r.markRead).parameters.toEqualTypeOf<[NotificationTarget]>();
    expectTypeOf<string[]>().toExtend<NotificationTarget>();
    expectTypeOf(r.markSeen).parameters.toEqualTypeOf<[NotificationTarget?]>();
    expectTypeOf(r.archive).parameters.toEqualTypeOf<[NotificationTarget]>();
    expectTypeOf(r.unarchive).parameters.toEqualTypeOf<[NotificationTarget]>();
    r.archive({ all: true, kinds: ['review'], upTo: '42' });
    // @ts-expect-error kinds are the server's enum
    r.archive({ all: true, kinds: ['weather'] });
    // status and kinds filters are the list procedure's own enums
    useNotifications('acme', { status: 'archived', kinds: ['crisis', 'review'] });
    // @ts-expect-error "deleted" is not a notification status
    useNotifications('acme', { status: 'deleted' });
    expectTypeOf(r.items[0]!.seenAt).toEqualTypeOf<string | null | undefined>();
    const first = r.items[0]!;
    if (first.type === 'review') expectTypeOf(first.data.rating).toEqualTypeOf<number>();
    if (first.type === 'approval')
      expectTypeOf(first.data.status).toEqualTypeOf<'pending' | 'approved' | 'rejected'>();
  });

  it('useDashboard', () => {
    const r = useDashboard('acme', { kinds: ['followers'], platforms: ['instagram'] });
    type Update = Exclude<Tracked<Out['dashboard']['onUpdate']>, { type: 'snapshot' }>;
    expectTypeOf(r.lastUpdate).toEqualTypeOf<Update | null>();
    expectTypeOf(r.values).toEqualTypeOf<Readonly<Record<string, Update>>>();
    // @ts-expect-error kinds are the server's enum
    useDashboard('acme', { kinds: ['weather'] });
  });

  it('useNotificationPreferences', () => {
    const r = useNotificationPreferences('acme');
    expectTypeOf(r.preferences).toEqualTypeOf<Out['notifications']['preferences']['get'] | null>();
    expectTypeOf(r.set).returns.toEqualTypeOf<Promise<Out['notifications']['preferences']['set']>>();
    void r.set({ kinds: { review: false, mention: null }, conversations: { c1: true } });
    void r.set({ scope: 'workspace', crisisMutable: true });
    // @ts-expect-error kinds are the server's enum
    void r.set({ kinds: { weather: false } });
  });

  it('useDashboardHistory', () => {
    const r = useDashboardHistory('acme', {
      kind: 'metric',
      platform: 'instagram',
      metric: 'impressions',
      bucket: '1m',
    });
    expectTypeOf(r.series).toEqualTypeOf<Out['dashboard']['history']['series']>();
    expectTypeOf(r.until).toEqualTypeOf<string | null>();
    // @ts-expect-error buckets are the server's enum
    useDashboardHistory('acme', { kind: 'metric', bucket: '5m' });
  });

  it('useInbox and useConversation', () => {
    const inbox = useInbox('acme');
    expectTypeOf(inbox.conversations).toEqualTypeOf<Out['inbox']['conversations']['items']>();
    const c = useConversation('acme', 'c1');
    expectTypeOf(c.messages).toEqualTypeOf<Out['inbox']['messages']['items']>();
    expectTypeOf(c.send).returns.toEqualTypeOf<Promise<Out['inbox']['send']['message'] | null>>();
  });

  it('select types: the selected value replaces the default, which stays when select is absent', () => {
    type Item = Out['notifications']['list']['items'][number];
    const count = useNotifications('acme', { select: (items) => items.length });
    expectTypeOf(count.items).toEqualTypeOf<number>();
    expectTypeOf(count.unseenCount).toEqualTypeOf<number>();
    const titles = useNotifications('acme', {
      status: 'unread',
      select: (items) => {
        expectTypeOf(items).toEqualTypeOf<Item[]>();
        return items.map((n) => n.title);
      },
    });
    expectTypeOf(titles.items).toEqualTypeOf<string[]>();

    type ConversationItem = Out['inbox']['conversations']['items'][number];
    const late = useInbox('acme', {
      select: (cs) => {
        expectTypeOf(cs).toEqualTypeOf<ConversationItem[]>();
        return cs.filter((c) => c.escalatedAt).length;
      },
    });
    expectTypeOf(late.conversations).toEqualTypeOf<number>();
    expectTypeOf(useInbox('acme', { enabled: false }).conversations).toEqualTypeOf<ConversationItem[]>();

    type MessageItem = Out['inbox']['messages']['items'][number];
    const last = useConversation('acme', 'c1', {
      select: (ms) => {
        expectTypeOf(ms).toEqualTypeOf<MessageItem[]>();
        return ms.at(-1)?.body ?? null;
      },
    });
    expectTypeOf(last.messages).toEqualTypeOf<string | null>();
    expectTypeOf(last.pending).toEqualTypeOf<ReturnType<typeof useConversation>['pending']>();
    expectTypeOf(useConversation('acme', null, { enabled: false }).messages).toEqualTypeOf<MessageItem[]>();
    // @ts-expect-error enabled is a boolean
    useConversation('acme', 'c1', { enabled: 'yes' });
    // Apps name results with ReturnType: it stays the default result, not `unknown`.
    expectTypeOf<ReturnType<typeof useNotifications>['items']>().toEqualTypeOf<Item[]>();
    expectTypeOf<ReturnType<typeof useInbox>['conversations']>().toEqualTypeOf<ConversationItem[]>();
    expectTypeOf<ReturnType<typeof useConversation>['messages']>().toEqualTypeOf<MessageItem[]>();
    expectTypeOf(useNotificationPreferences('acme', { enabled: false }).preferences).toEqualTypeOf<
      Out['notifications']['preferences']['get'] | null
    >();
  });

  it('useConnectionStatus', () => {
    expectTypeOf(useConnectionStatus().status).toEqualTypeOf<
      'connecting' | 'connected' | 'reconnecting' | 'offline'
    >();
  });
});
