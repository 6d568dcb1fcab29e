import { createPulseRouter } from '@pulse/server';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createPulseHooks } from './createPulseHooks.js';
import { useDashboard as usePulseDashboard } from './useDashboard.js';
import { useNotificationPreferences as usePulsePreferences } from './useNotificationPreferences.js';

// The app's own kinds, declared once as zod schemas on the server; the hooks are typed from them.
const appRouter = createPulseRouter({
  notificationKinds: { invoice_paid: z.object({ invoiceId: z.string(), amount: z.number() }) },
  dashboardKinds: { mrr: z.object({ value: z.number(), currency: z.enum(['EUR', 'USD']) }) },
});
type AppRouter = typeof appRouter;

const { useDashboard, useDashboardHistory, useNotifications, useNotificationPreferences } =
  createPulseHooks<AppRouter>();

type SeedKind =
  | 'mention'
  | 'message'
  | 'approval'
  | 'alert'
  | 'post_published'
  | 'post_failed'
  | 'crisis'
  | 'review';

describe('createPulseHooks types the hooks with the app kinds', () => {
  it('useDashboard: the mrr value is typed, a wrong field does not compile', () => {
    const r = useDashboard('acme', { kinds: ['mrr', 'followers'] });
    const v = r.values.any!;
    if (v.kind === 'mrr') {
      expectTypeOf(v.value).toEqualTypeOf<number>();
      expectTypeOf(v.currency).toEqualTypeOf<'EUR' | 'USD'>();
      expectTypeOf(v.key).toEqualTypeOf<string>();
      // @ts-expect-error an mrr value has no `count`
      void v.count;
    }
    if (v.kind === 'followers') expectTypeOf(v.count).toEqualTypeOf<number>();
    expectTypeOf(r.lastUpdate).toEqualTypeOf<typeof v | null>();
    expectTypeOf(v.kind).toEqualTypeOf<
      'metric' | 'post' | 'analytics' | 'followers' | 'engagement' | 'mrr'
    >();
    // @ts-expect-error kinds are the router's
    useDashboard('acme', { kinds: ['weather'] });
    // select sees the typed values
    const total = useDashboard('acme', {
      select: (values) => Object.values(values).reduce((n, u) => n + (u.kind === 'mrr' ? u.value : 0), 0),
    });
    expectTypeOf(total.values).toEqualTypeOf<number>();
    // Pulse's own hook keeps Pulse's kinds.
    // @ts-expect-error the default hook does not know the app's `mrr`
    usePulseDashboard('acme', { kinds: ['mrr'] });
  });

  it('useDashboardHistory: kind is one of the router kinds', () => {
    const r = useDashboardHistory('acme', { kind: 'mrr', metric: 'value', bucket: 'raw' });
    expectTypeOf(r.series[0]!.points[0]!.value).toEqualTypeOf<number>();
    // @ts-expect-error the router has no `weather` kind
    useDashboardHistory('acme', { kind: 'weather' });
  });

  it('useNotifications: items, filters and bulk actions carry the app kinds', () => {
    const r = useNotifications('acme', { kinds: ['invoice_paid', 'mention'] });
    const n = r.items[0]!;
    if (n.type === 'invoice_paid') {
      expectTypeOf(n.data.amount).toEqualTypeOf<number>();
      // @ts-expect-error an invoice_paid notification has no `rating`
      void n.data.rating;
    }
    r.archive({ all: true, kinds: ['invoice_paid'] });
    // @ts-expect-error bulk action kinds are the router's
    r.markRead({ all: true, kinds: ['weather'] });
    // @ts-expect-error kinds are the router's
    useNotifications('acme', { kinds: ['weather'] });
    const count = useNotifications('acme', {
      select: (items) => items.filter((i) => i.type === 'invoice_paid').length,
    });
    expectTypeOf(count.items).toEqualTypeOf<number>();
  });

  it('useNotificationPreferences: effective, the choices and set name the app kinds', () => {
    const r = useNotificationPreferences('acme', { enabled: true });
    const p = r.preferences!;
    expectTypeOf(p.effective).toEqualTypeOf<Record<SeedKind | 'invoice_paid', boolean>>();
    expectTypeOf(p.effective.invoice_paid).toEqualTypeOf<boolean>();
    expectTypeOf(p.user.kinds).toEqualTypeOf<Partial<Record<SeedKind | 'invoice_paid', boolean>>>();
    expectTypeOf(p.workspace.kinds.invoice_paid).toEqualTypeOf<boolean | undefined>();
    expectTypeOf(p.user.mutedConversations).toEqualTypeOf<string[]>();
    // @ts-expect-error the router has no `weather` kind
    void p.effective.weather;
    // @ts-expect-error the router has no `weather` kind
    void p.user.kinds.weather;
    expectTypeOf(r.set({ kinds: { invoice_paid: false, mention: null } })).resolves.toEqualTypeOf(p);
    r.set({ scope: 'workspace', kinds: { invoice_paid: false }, crisisMutable: true });
    // @ts-expect-error the router has no `weather` kind
    r.set({ kinds: { weather: false } });
    // @ts-expect-error a kind is on, off or null (back to the default)
    r.set({ kinds: { invoice_paid: 'off' } });
    // Pulse's own hook keeps Pulse's kinds.
    const seed = usePulsePreferences('acme').preferences!;
    expectTypeOf(seed.effective).toEqualTypeOf<Record<SeedKind, boolean>>();
    // @ts-expect-error the default hook does not know the app's `invoice_paid`
    void seed.effective.invoice_paid;
    // @ts-expect-error the default hook does not know the app's `invoice_paid`
    usePulsePreferences('acme').set({ kinds: { invoice_paid: false } });
  });
});
