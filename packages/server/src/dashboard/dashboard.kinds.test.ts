import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dashboardKinds } from '../kinds.js';

describe('dashboardKinds', () => {
  const kinds = dashboardKinds({ mrr: z.object({ value: z.number().nonnegative(), currency: z.string() }) });

  it('keeps the seed kinds and adds the app kind', () => {
    expect(kinds.types).toEqual(['metric', 'post', 'analytics', 'followers', 'engagement', 'mrr']);
    expect(
      kinds.publishInput.parse({ workspaceId: 'acme', kind: 'mrr', value: 10, currency: 'EUR' }),
    ).toEqual({
      workspaceId: 'acme',
      kind: 'mrr',
      value: 10,
      currency: 'EUR',
    });
  });

  it('a bad app payload fails with the zod path', () => {
    const result = kinds.publishInput.safeParse({
      workspaceId: 'acme',
      kind: 'mrr',
      value: -1,
      currency: 'EUR',
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['value']);
    expect(result.error?.issues[0]?.message).toMatch(/>=0/);
  });
});
