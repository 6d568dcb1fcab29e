import { z } from 'zod';

/**
 * The app's own dashboard kind: monthly recurring revenue, a live value beside Pulse's five
 * dashboard kinds (`createPulseRouters({ dashboardKinds: { mrr } })`). Its number field `value` is
 * its history series.
 */
export const mrr = z.object({
  /** In the currency's minor unit (cents). */
  value: z.number().int().nonnegative(),
  /** ISO 4217 code, e.g. `EUR`. */
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
});
export type Mrr = z.infer<typeof mrr>;

/** The app's dashboard kinds (Pulse's five stay). */
export const dashboardKinds = { mrr };
