/**
 * Error-code helpers for tRPC errors as a client sees them (`TRPCClientError`: `.data.code`, and
 * for a BAD_REQUEST the zod `issues` Pulse's error formatter attaches). Structural, so they need
 * no client package and work with any assertion library.
 */
interface ClientErrorShape {
  message?: string;
  data?: { code?: string; issues?: Array<{ path: string[]; message: string }> } | null;
}

/** The tRPC error code of a rejected call (`'FORBIDDEN'`, `'BAD_REQUEST'`…), or undefined. */
export function codeOf(error: unknown): string | undefined {
  return (error as ClientErrorShape | null)?.data?.code ?? undefined;
}

/** The zod issues the error formatter attached to a BAD_REQUEST (empty when none). */
export function issuesOf(error: unknown): Array<{ path: string[]; message: string }> {
  return (error as ClientErrorShape | null)?.data?.issues ?? [];
}

/**
 * Awaits `call` (a promise, or a function returning one) and resolves with its error when it
 * rejects with tRPC code `code`; throws when it resolves or rejects with another code.
 * `const error = await expectCode(client.posts.get.query({ id }), 'NOT_FOUND')`.
 */
export async function expectCode(
  call: Promise<unknown> | (() => Promise<unknown>),
  code: string,
): Promise<Error> {
  let result: unknown;
  try {
    result = await (typeof call === 'function' ? call() : call);
  } catch (error) {
    const actual = codeOf(error);
    if (actual !== code)
      throw new Error(
        `expected a ${code} error, got ${actual ?? 'an error without a tRPC code'}: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      );
    return error as Error;
  }
  throw new Error(`expected a ${code} error, but the call resolved with ${safeJson(result)}`);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
