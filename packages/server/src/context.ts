import type { TRPCError } from '@trpc/server';
import type { Principal } from './auth/auth.schema.js';
import type { PulseServices } from './services.js';

/** Per-request (HTTP) or per-connection (WebSocket) context. */
export interface PulseContext {
  /** The verified caller, or null when no valid token was presented. */
  principal: Principal | null;
  /** Why the token was refused, reported when a procedure needs a principal. */
  authError: TRPCError | null;
  /** Set for WebSocket connections: presence and limits are tracked per connection. */
  connectionId: string | null;
  /** Set for HTTP requests (logs, and the reference in masked internal errors). */
  requestId?: string;
  services: PulseServices;
}

/** A context whose caller is verified (after `authedProcedure`). */
export type AuthedContext = PulseContext & { principal: Principal };
