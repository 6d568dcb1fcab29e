import { TRPCError } from '@trpc/server';
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RedisClient } from './redis-client.js';

/** The limits a Pulse node enforces on mutations and queries (see docs/security.md). */
export interface RateLimitSettings {
  /** Mutations per second per connection (HTTP callers: per user), with a burst allowance. */
  rateLimitPerSec: number;
  rateLimitBurst: number;
  /** Mutations per second per user across all of their connections and nodes. */
  rateLimitUserPerSec: number;
  rateLimitUserBurst: number;
  /** Queries per second per connection (HTTP callers: per user), with a burst allowance. */
  queryRatePerSec: number;
  queryBurst: number;
  /** `presence.set` per user and workspace. */
  presenceRatePerSec: number;
  presenceBurst: number;
  /** `presence.typing` with `isTyping: true`: at most one per interval per user and conversation. */
  typingIntervalMs: number;
}

/** Which limit refused a call (metric label). */
export type RateLimitName = 'connection' | 'user' | 'query' | 'presence';

export interface RateLimiter {
  /** Throws TOO_MANY_REQUESTS when `key` used up limit `name`. */
  consume(name: RateLimitName, key: string): Promise<void>;
  /** True when a typing refresh for `key` came inside the interval (the call becomes a no-op). */
  typingThrottled(key: string): Promise<boolean>;
}

export interface RateLimiterOptions {
  settings: RateLimitSettings;
  /** Shared Redis (many nodes): limits hold cluster-wide. Without it, limits are per node, in memory. */
  redis?: RedisClient;
  /** Key prefix in Redis. */
  keyPrefix?: string;
  /** Called on every refusal (metrics, logs). */
  onLimited?(name: RateLimitName | 'typing'): void;
}

/** Builds the mutation and query limiters with `rate-limiter-flexible`: memory by default, Redis when given a client. */
export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const prefix = opts.keyPrefix ?? 'pulse:rl';
  const { settings } = opts;

  const make = (name: string, points: number, durationMs: number): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({
      keyPrefix: `${prefix}:${name}`,
      points,
      duration: durationMs / 1000,
    });
    if (!opts.redis) return memory;
    // NOTE: Redis windows are whole seconds; while Redis is unreachable the per-node memory limiter stands in.
    return new RateLimiterRedis({
      storeClient: opts.redis,
      keyPrefix: `${prefix}:${name}`,
      points,
      duration: Math.max(1, Math.ceil(durationMs / 1000)),
      insuranceLimiter: memory,
    });
  };
  const bursty = (name: string, perSec: number, burst: number) => {
    const extra = Math.max(1, burst - perSec);
    const windowMs = Math.max(1000, Math.ceil(burst / perSec) * 1000);
    return new BurstyRateLimiter(make(name, perSec, 1000), make(`${name}:burst`, extra, windowMs));
  };

  const limiters: Record<RateLimitName, BurstyRateLimiter> = {
    connection: bursty('conn', settings.rateLimitPerSec, settings.rateLimitBurst),
    user: bursty('user', settings.rateLimitUserPerSec, settings.rateLimitUserBurst),
    query: bursty('query', settings.queryRatePerSec, settings.queryBurst),
    presence: bursty('presence', settings.presenceRatePerSec, settings.presenceBurst),
  };
  const typing = make('typing', 1, settings.typingIntervalMs);

  return {
    async consume(name, key) {
      try {
        await limiters[name].consume(key);
      } catch (cause) {
        if (!(cause instanceof RateLimiterRes)) throw cause;
        opts.onLimited?.(name);
        const retryAfterMs = Math.max(1, Math.ceil(cause.msBeforeNext));
        throw new TRPCError({
          code: 'TOO_MANY_REQUESTS',
          message: `Rate limit (${name}) exceeded; retry in ${retryAfterMs} ms`,
        });
      }
    },
    async typingThrottled(key) {
      try {
        await typing.consume(key);
        return false;
      } catch (cause) {
        if (!(cause instanceof RateLimiterRes)) throw cause;
        opts.onLimited?.('typing');
        return true;
      }
    },
  };
}
