import type { ChannelEvent, ChannelMessage } from '@pulse/server';
import type { TRPCClient } from '@trpc/client';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type AppRouter, createApp } from '../src/app.js';

// Type-level checks: `npm run typecheck` (tsc) fails if a @ts-expect-error below stops being an error.
describe('the app router is typed end to end', () => {
  it('a wrong field in a comment event does not type-check (and is refused at runtime)', () => {
    const { comments, appRouter } = createApp();
    type Client = TRPCClient<AppRouter>;
    type Publish = Client['channels']['comments']['publish']['mutate'];
    expectTypeOf<Parameters<Publish>[0]['event']>().toEqualTypeOf<{
      commentId: string;
      text: string;
      replyTo?: string | undefined;
    }>();
    const publish = (() => Promise.resolve({ id: '1', created: true })) as unknown as Publish;
    const input = { postId: 'p1' };
    const wrongEvent = { commentId: 'c1', body: 'hi' };
    // @ts-expect-error `body` is not a field of a comment (it is `text`)
    void publish({ workspaceId: 'acme', input, event: wrongEvent });
    const wrongInput = { post: 'p1' };
    const event = { commentId: 'c1', text: 'hi' };
    // @ts-expect-error the comments channel is keyed by `postId`
    void publish({ workspaceId: 'acme', input: wrongInput, event });

    // Subscribers see the event type inside the channel's messages.
    type Subscribe = Client['channels']['comments']['subscribe']['subscribe'];
    type OnData = NonNullable<Parameters<Subscribe>[1]['onData']>;
    type Message = Parameters<OnData>[0]['data'];
    expectTypeOf<Message>().toEqualTypeOf<
      ChannelMessage<{ commentId: string; text: string; replyTo?: string | undefined }, { postId: string }>
    >();
    expectTypeOf<Extract<Message, { type: 'event' }>>().toEqualTypeOf<
      ChannelEvent<{ commentId: string; text: string; replyTo?: string | undefined }, { postId: string }>
    >();
    // The app's own procedures and Pulse's are both on the client type.
    expectTypeOf<Client['posts']['get']['query']>()
      .parameter(0)
      .toEqualTypeOf<{ workspaceId: string; id: string }>();
    expectTypeOf<Client['notifications']['unreadCount']['query']>().returns.resolves.toEqualTypeOf<number>();

    expect(comments.event.safeParse({ commentId: 'c1', body: 'hi' }).success).toBe(false);
    expect(Object.keys(appRouter._def.procedures)).toEqual(
      expect.arrayContaining([
        'posts.get',
        'channels.comments.publish',
        'channels.comments.subscribe',
        'notifications.send',
      ]),
    );
  });

  it('the mrr dashboard kind is typed on publish and onUpdate; a wrong field does not type-check', () => {
    type Client = TRPCClient<AppRouter>;
    type Publish = Client['dashboard']['publish']['mutate'];
    const publish = (() => Promise.resolve()) as unknown as Publish;
    void publish({ workspaceId: 'acme', kind: 'mrr', value: 100, currency: 'EUR' });
    const wrong = { workspaceId: 'acme', kind: 'mrr', amount: 100, currency: 'EUR' } as const;
    // @ts-expect-error an mrr value is `value`, not `amount`
    void publish(wrong);
    type OnData = NonNullable<Parameters<Client['dashboard']['onUpdate']['subscribe']>[1]['onData']>;
    type Update = Extract<Parameters<OnData>[0], { type: 'update'; kind: 'mrr' }>;
    expectTypeOf<Update['value']>().toEqualTypeOf<number>();
    expectTypeOf<Client['dashboard']['history']['query']>()
      .parameter(0)
      .toHaveProperty('kind')
      .toEqualTypeOf<'metric' | 'post' | 'analytics' | 'followers' | 'engagement' | 'mrr'>();
  });

  it('the invoice_paid kind is typed on send, list and the stream; a wrong field does not type-check', () => {
    const { appRouter } = createApp();
    type Client = TRPCClient<AppRouter>;
    type Send = Client['notifications']['send']['mutate'];
    const send = (() => Promise.resolve()) as unknown as Send;
    const invoice = { invoiceId: 'inv-1', amount: 100, currency: 'EUR' };
    void send({ workspaceId: 'acme', type: 'invoice_paid', title: 'Paid', data: invoice });
    // Seed kinds stay.
    void send({
      workspaceId: 'acme',
      type: 'alert',
      title: 'Deploy',
      data: { alertType: 'system', severity: 'info', message: 'done' },
    });
    const wrong = { invoiceId: 'inv-1', total: 100, currency: 'EUR' };
    // @ts-expect-error `total` is not a field of invoice_paid (it is `amount`)
    void send({ workspaceId: 'acme', type: 'invoice_paid', title: 'Paid', data: wrong });
    const textAmount = { ...invoice, amount: '1' };
    // @ts-expect-error `amount` is a number
    void send({ workspaceId: 'acme', type: 'invoice_paid', title: 'Paid', data: textAmount });

    type Sent = Awaited<ReturnType<Send>>['notification'];
    expectTypeOf<Extract<Sent, { type: 'invoice_paid' }>['data']>().toEqualTypeOf<{
      invoiceId: string;
      amount: number;
      currency: string;
    }>();
    type Listed = Awaited<ReturnType<Client['notifications']['list']['query']>>['items'][number];
    expectTypeOf<Extract<Listed, { type: 'invoice_paid' }>['data']['amount']>().toEqualTypeOf<number>();
    type OnData = NonNullable<
      Parameters<Client['notifications']['onNotification']['subscribe']>[1]['onData']
    >;
    type Streamed = Extract<Parameters<OnData>[0]['data'], { type: 'notification' }>['notification'];
    expectTypeOf<Extract<Streamed, { type: 'invoice_paid' }>['data']['invoiceId']>().toEqualTypeOf<string>();
    expectTypeOf<Extract<Streamed, { type: 'mention' }>['data']['author']>().toEqualTypeOf<string>();

    expect(Object.keys(appRouter._def.procedures)).toEqual(
      expect.arrayContaining(['notifications.send', 'notifications.list', 'notifications.onFeed']),
    );
  });

  it('preferences name the invoice_paid kind in effective, the choices and set; a wrong kind does not type-check', () => {
    const { appRouter } = createApp();
    type Client = TRPCClient<AppRouter>;
    type Prefs = Awaited<ReturnType<Client['notifications']['preferences']['get']['query']>>;
    expectTypeOf<Prefs['effective']['invoice_paid']>().toEqualTypeOf<boolean>();
    expectTypeOf<Prefs['effective']['mention']>().toEqualTypeOf<boolean>();
    expectTypeOf<Prefs['user']['kinds']['invoice_paid']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<Prefs['workspace']['kinds']['invoice_paid']>().toEqualTypeOf<boolean | undefined>();
    type SetPrefs = Client['notifications']['preferences']['set']['mutate'];
    expectTypeOf<Awaited<ReturnType<SetPrefs>>>().toEqualTypeOf<Prefs>();
    const set = (() => Promise.resolve()) as unknown as SetPrefs;
    void set({ workspaceId: 'acme', kinds: { invoice_paid: false, alert: null } });
    // @ts-expect-error the app has no `invoice_sent` kind (it is `invoice_paid`)
    void set({ workspaceId: 'acme', kinds: { invoice_sent: false } });
    const effective = {} as Prefs['effective'];
    // @ts-expect-error the app has no `invoice_sent` kind
    void effective.invoice_sent;
    // The feed's `preferences` events carry the same kinds.
    type OnData = NonNullable<Parameters<Client['notifications']['onFeed']['subscribe']>[1]['onData']>;
    type PreferencesEvent = Extract<Parameters<OnData>[0]['data'], { type: 'preferences' }>;
    expectTypeOf<NonNullable<PreferencesEvent['user']>['kinds']>().toEqualTypeOf<Prefs['user']['kinds']>();

    expect(Object.keys(appRouter._def.procedures)).toEqual(
      expect.arrayContaining(['notifications.preferences.get', 'notifications.preferences.set']),
    );
  });
});
