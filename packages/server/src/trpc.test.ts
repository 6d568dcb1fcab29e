import { Writable } from 'node:stream';
import { TRPCError } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Principal } from './auth/auth.schema.js';
import type { PulseContext } from './context.js';
import { createLogger } from './infra/log.js';
import { createMetrics } from './infra/metrics.js';
import { createRateLimiter, type RateLimiter } from './infra/rate-limit.js';
import type { PulseServices } from './services.js';
import { authedProcedure, createCallerFactory, memberProcedure, router } from './trpc.js';

/**
 * authedProcedure is one middleware (NUL check, token, limits, log): the order of its refusals and
 * what it logs are those of the four steps it replaced.
 */

const settings = {
  rateLimitPerSec: 1,
  rateLimitBurst: 1,
  rateLimitUserPerSec: 100,
  rateLimitUserBurst: 100,
  queryRatePerSec: 100,
  queryBurst: 100,
  presenceRatePerSec: 10,
  presenceBurst: 10,
  typingIntervalMs: 1000,
};

const app = router({
  echo: authedProcedure
    .input(z.object({ text: z.string() }))
    .query(({ input, ctx }) => `${ctx.principal.userId}:${input.text}`),
  fail: authedProcedure.query(() => {
    throw new Error('disk on fire');
  }),
  refuse: authedProcedure.query(() => {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'no' });
  }),
  write: authedProcedure.mutation(({ ctx }) => ctx.principal.userId),
  member: memberProcedure.query(({ input }) => input.workspaceId),
});
const createCaller = createCallerFactory(app);

function setup(principal: Principal | null, limiter?: RateLimiter) {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const metrics = createMetrics({
    nodeId: 'trpc-test',
    transport: () => ({ connections: 0, subscriptionsByPath: {} }),
    hub: () => ({ topics: 0, sinks: 0 }),
  });
  // Only the services these procedures reach (the rest of PulseServices is never read here).
  const services = {
    logger: createLogger({ level: 'debug', nodeId: 'trpc-test', destination }),
    rateLimiter: limiter ?? createRateLimiter({ settings }),
    metrics,
  } as unknown as PulseServices;
  const ctx: PulseContext = { principal, authError: null, connectionId: 'conn-1', services };
  return { caller: createCaller(ctx), lines, metrics };
}

const alice: Principal = {
  userId: 'alice',
  name: 'Alice',
  workspaces: Object.assign(Object.create(null), { acme: 'member' }),
  service: false,
  expiresAt: Date.now() + 3_600_000,
};

async function refusal(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return { code: (error as TRPCError).code, message: (error as TRPCError).message };
}

describe('authedProcedure', () => {
  it('passes the principal on and runs the procedure', async () => {
    const { caller, lines } = setup(alice);
    expect(await caller.echo({ text: 'hi' })).toBe('alice:hi');
    expect(await caller.member({ workspaceId: 'acme' })).toBe('acme');
    expect(lines).toEqual([]);
  });

  it('refuses NUL characters before looking at the token', async () => {
    const { caller } = setup(null);
    expect(await refusal(caller.echo({ text: 'a\u0000b' }))).toEqual({
      code: 'BAD_REQUEST',
      message: 'Input must not contain NUL (\\u0000) characters',
    });
    expect(await refusal(caller.echo({ text: 'ab' }))).toEqual({
      code: 'UNAUTHORIZED',
      message: 'Missing token',
    });
  });

  it('counts a missing token, refuses an expired one', async () => {
    const { caller, metrics } = setup(null);
    expect(await refusal(caller.echo({ text: 'x' }))).toEqual({
      code: 'UNAUTHORIZED',
      message: 'Missing token',
    });
    expect(await metrics.registry.metrics()).toMatch(
      /pulse_auth_failures_total\{[^}]*reason="missing"[^}]*\} 1/,
    );
    const expired = setup({ ...alice, expiresAt: Date.now() - 1 });
    expect(await refusal(expired.caller.echo({ text: 'x' }))).toEqual({
      code: 'UNAUTHORIZED',
      message: 'Token expired',
    });
  });

  it('limits mutations per connection, with the limiter message', async () => {
    const { caller, lines } = setup(alice);
    // The burst allowance lets a first few through (rate-limit.ts); then the limit refuses.
    let accepted = 0;
    while ((await caller.write().catch(() => null)) === 'alice') accepted++;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(5);
    const { code, message } = await refusal(caller.write());
    expect(code).toBe('TOO_MANY_REQUESTS');
    expect(message).toMatch(/^Rate limit \(connection\) exceeded; retry in \d+ ms$/);
    // A refusal is not a server fault: nothing logged.
    expect(lines).toEqual([]);
  });

  it('logs an internal failure of the procedure once, and none for a refusal', async () => {
    const { caller, lines } = setup(alice);
    expect(await refusal(caller.fail())).toEqual({ code: 'INTERNAL_SERVER_ERROR', message: 'disk on fire' });
    expect(await refusal(caller.refuse())).toEqual({ code: 'FORBIDDEN', message: 'no' });
    const failures = lines.filter((l) => l.msg === 'procedure failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ level: 50, path: 'fail', type: 'query', connectionId: 'conn-1' });
    expect(JSON.stringify(failures[0]?.err)).toContain('disk on fire');
  });

  it('logs an internal failure of the limiter (an injected store fault) once', async () => {
    const real = createRateLimiter({ settings });
    const broken: RateLimiter = {
      consume: () => Promise.reject(new Error('limiter store unreachable')),
      typingThrottled: (key) => real.typingThrottled(key),
    };
    const { caller, lines } = setup(alice, broken);
    expect(await refusal(caller.write())).toEqual({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'limiter store unreachable',
    });
    const failures = lines.filter((l) => l.msg === 'procedure failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ path: 'write', type: 'mutation', connectionId: 'conn-1' });
    expect(JSON.stringify(failures[0]?.err)).toContain('limiter store unreachable');
  });
});
