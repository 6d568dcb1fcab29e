import { TRPCError } from '@trpc/server';
import { z } from 'zod';

/**
 * Finds the first string (value or object key) holding a NUL character in a decoded JSON input.
 * Iterative, so a deeply nested input cannot overflow the stack; inputs are bounded by the payload cap.
 */
export function findNul(input: unknown): Array<string | number> | null {
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: input, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], path: [...path, i] });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000')) return [...path, key];
        stack.push({ value: item, path: [...path, key] });
      }
    }
  }
  return null;
}

/**
 * Throws BAD_REQUEST (with a zod issue, as any schema failure) when `input` holds a NUL character
 * anywhere. NUL has no place in Pulse's text, and PostgreSQL refuses it in `text` and `jsonb`.
 */
export function assertNoNul(input: unknown): void {
  const path = findNul(input);
  if (!path) return;
  // NOTE: ZodRealError (what `schema.parse` throws) is an Error, so tRPC keeps it as the cause.
  const cause = new z.ZodRealError([
    { code: 'custom', path, message: 'must not contain NUL (\\u0000) characters', input: undefined },
  ]);
  throw new TRPCError({
    code: 'BAD_REQUEST',
    message: 'Input must not contain NUL (\\u0000) characters',
    cause,
  });
}
