import { TRPCClientError } from '@trpc/client';
import type { AppRouter } from '@pulse/server/contract';

/** What went wrong, keyed on `type` (the union a UI switches on). */
export type PulseErrorContext =
  | { type: 'AUTH'; code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string }
  | {
      type: 'INPUT';
      code: 'BAD_REQUEST';
      message: string;
      issues: Array<{ path: string[]; message: string }>;
    }
  | { type: 'RATE_LIMIT'; code: 'TOO_MANY_REQUESTS'; message: string }
  | { type: 'CONNECTION'; code: 'CLOSED' | 'TIMEOUT'; message: string; closeCode?: number }
  | { type: 'SERVER'; code: string; message: string };

/** The one error type Pulse clients and hooks surface. */
export class PulseError extends Error {
  constructor(
    readonly context: PulseErrorContext,
    options?: { cause?: unknown },
  ) {
    super(context.message, options);
    this.name = 'PulseError';
  }
}

/** Converts anything thrown by tRPC or the socket into a `PulseError`. */
export function toPulseError(error: unknown): PulseError {
  if (error instanceof PulseError) return error;
  if (error instanceof TRPCClientError) {
    const e = error as TRPCClientError<AppRouter>;
    const code = e.data?.code ?? 'INTERNAL_SERVER_ERROR';
    const message = e.message;
    if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN')
      return new PulseError({ type: 'AUTH', code, message }, { cause: e });
    if (code === 'BAD_REQUEST') {
      const issues =
        (e.data as { issues?: Array<{ path: string[]; message: string }> } | undefined)?.issues ?? [];
      return new PulseError({ type: 'INPUT', code, message, issues }, { cause: e });
    }
    if (code === 'TOO_MANY_REQUESTS')
      return new PulseError({ type: 'RATE_LIMIT', code, message }, { cause: e });
    if (!e.data) return new PulseError({ type: 'CONNECTION', code: 'CLOSED', message }, { cause: e });
    return new PulseError({ type: 'SERVER', code, message }, { cause: e });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new PulseError({ type: 'SERVER', code: 'UNKNOWN', message }, { cause: error });
}
