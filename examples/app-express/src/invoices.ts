import { z } from 'zod';

/**
 * The app's own notification kind: an invoice was paid. Added to Pulse's eight seed kinds with
 * `createPulseRouters({ notificationKinds: { invoice_paid: invoicePaid } })`.
 */
export const invoicePaid = z.object({
  invoiceId: z.string().min(1).max(100),
  /** In the currency's minor unit (cents). */
  amount: z.number().int().positive(),
  /** ISO 4217 code, e.g. `EUR`. */
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
});
export type InvoicePaid = z.infer<typeof invoicePaid>;

/** The app's notification kinds (the seed kinds stay). */
export const notificationKinds = { invoice_paid: invoicePaid };
