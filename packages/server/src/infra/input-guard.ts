import { TRPCError } from '@trpc/server';
import { z } from 'zod';

/**
 * Finds the first string (value or object key) holding a NUL character in a decoded JSON input.
 * Iterative, so a deeply nested input cannot overflow the stack; inputs are bounded by the payload cap.
 */
export function findNul(input: unknown): Array<string | number> | null {
  // NOTE: every procedure call runs this; the paths are built only for an input that holds a NUL.
  if (!hasNul(input)) return null;
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

/** Whether any string (value or object key) of a decoded JSON input holds a NUL character. */
function hasNul(input: unknown): boolean {
  const stack: unknown[] = [input];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        if (key.includes('\u0000')) return true;
        stack.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return false;
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
