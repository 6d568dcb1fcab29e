import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const ms = (fallback: number) => z.coerce.number().int().nonnegative().default(fallback);
const csv = z
  .string()
  .optional()
  .transform((value) =>
    value
      ? value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean)
      : [],
  );

/** Environment variables Pulse reads; every one has a default that runs on one machine. */
export const envSchema = z.object({
  NODE_ENV: z.string().default('development'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  PULSE_JWT_SECRET: z.string().min(32, 'PULSE_JWT_SECRET must be at least 32 characters').optional(),
  PULSE_JWT_ISSUER: z.string().optional(),
  PULSE_JWT_AUDIENCE: z.string().optional(),
  PULSE_ALLOWED_ORIGINS: csv,
  PULSE_DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.string().optional(),
  REDIS_URL: z.string().optional(),
  /** Prefix of every Redis key and channel (several clusters or test runs on one Redis). */
  PULSE_REDIS_PREFIX: z.string().default('pulse:'),
  /** Demo mode with a configured secret (several nodes sharing one secret, e.g. `npm run cluster`). */
  PULSE_DEMO: z.enum(['true', 'false', '1', '0', '']).optional(),
  PULSE_NODE_ID: z.string().optional(),
  PULSE_PRESENCE_GRACE_MS: ms(5_000),
  PULSE_PRESENCE_TTL_MS: ms(60_000),
  PULSE_TYPING_TTL_MS: ms(5_000),
  PULSE_INBOX_SLA_MS: ms(15 * 60_000),
  PULSE_INBOX_SLA_POLL_MS: ms(1_000),
  PULSE_INBOX_RETENTION: z.coerce.number().int().positive().default(1_000),
  PULSE_NOTIFICATION_RETENTION: z.coerce.number().int().positive().default(500),
  PULSE_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  PULSE_MAX_BATCH: z.coerce.number().int().positive().default(128),
  PULSE_MAX_SUBSCRIPTIONS: z.coerce.number().int().positive().default(100),
  PULSE_MAX_CONNECTIONS_PER_USER: z.coerce.number().int().positive().default(50),
  PULSE_AUTH_TIMEOUT_MS: ms(10_000),
  PULSE_PING_MS: ms(25_000),
  PULSE_PONG_WAIT_MS: ms(10_000),
  PULSE_SLOW_DROP_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  PULSE_SLOW_CLOSE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  PULSE_RATE_LIMIT_PER_SEC: z.coerce.number().int().positive().default(20),
  PULSE_RATE_LIMIT_BURST: z.coerce.number().int().positive().default(50),
  PULSE_RATE_LIMIT_USER_PER_SEC: z.coerce.number().int().positive().default(50),
  PULSE_RATE_LIMIT_USER_BURST: z.coerce.number().int().positive().default(100),
  PULSE_PRESENCE_RATE_PER_SEC: z.coerce.number().int().positive().default(2),
  PULSE_PRESENCE_BURST: z.coerce.number().int().positive().default(10),
  PULSE_TYPING_INTERVAL_MS: ms(2_000),
  PULSE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type PulseEnv = z.infer<typeof envSchema>;

/** Typed runtime configuration of one Pulse node. */
export interface PulseConfig {
  host: string;
  port: number;
  production: boolean;
  /** True when no secret was configured and one was generated: tokens are minted for demo users. */
  demoMode: boolean;
  jwt: { secret: string; issuer?: string; audience?: string };
  allowedOrigins: string[];
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** Prefix of every Redis key and channel. */
  redisPrefix: string;
  nodeId: string;
  presence: { graceMs: number; ttlMs: number; typingTtlMs: number };
  /** `slaMs`: default reply SLA; `slaPollMs`: how often each node looks for breaches; `retention`: replayable events per workspace. */
  inbox: { slaMs: number; slaPollMs: number; retention: number };
  notifications: { retention: number };
  limits: {
    maxPayloadBytes: number;
    maxBatch: number;
    maxSubscriptions: number;
    maxConnectionsPerUser: number;
    authTimeoutMs: number;
    pingMs: number;
    pongWaitMs: number;
    slowDropBytes: number;
    slowCloseBytes: number;
    rateLimitPerSec: number;
    rateLimitBurst: number;
    rateLimitUserPerSec: number;
    rateLimitUserBurst: number;
    presenceRatePerSec: number;
    presenceBurst: number;
    typingIntervalMs: number;
  };
  logLevel: PulseEnv['PULSE_LOG_LEVEL'];
}

/** Partial overrides accepted by `createPulseServer` (tests, embedding). */
export type PulseConfigInput = Partial<
  Omit<PulseConfig, 'jwt' | 'presence' | 'inbox' | 'limits' | 'notifications'>
> & {
  jwt?: Partial<PulseConfig['jwt']>;
  presence?: Partial<PulseConfig['presence']>;
  inbox?: Partial<PulseConfig['inbox']>;
  notifications?: Partial<PulseConfig['notifications']>;
  limits?: Partial<PulseConfig['limits']>;
};

/**
 * Reads the environment (the only place `process.env` is read) into a typed config.
 * Throws a readable error listing every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): PulseConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid Pulse configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && (e.PULSE_DEMO === 'true' || e.PULSE_DEMO === '1')) {
    throw new Error('PULSE_DEMO cannot be set when NODE_ENV=production.');
  }
  if (production && !e.PULSE_JWT_SECRET) {
    throw new Error(
      'PULSE_JWT_SECRET is required when NODE_ENV=production (demo mode is for development only).',
    );
  }
  if (e.PULSE_MAX_BATCH < e.PULSE_MAX_SUBSCRIPTIONS) {
    // NOTE: wsLink re-sends every pending request in ONE frame after a reconnect; a batch cap below
    // the subscription cap would refuse that frame and the client's subscriptions would never resume.
    throw new Error(
      `PULSE_MAX_BATCH (${e.PULSE_MAX_BATCH}) must be at least PULSE_MAX_SUBSCRIPTIONS (${e.PULSE_MAX_SUBSCRIPTIONS}): clients re-send all their subscriptions in one frame when they reconnect.`,
    );
  }
  return resolveConfig({
    host: e.HOST,
    port: e.PORT,
    production,
    demoMode: !e.PULSE_JWT_SECRET || e.PULSE_DEMO === 'true' || e.PULSE_DEMO === '1',
    jwt: { secret: e.PULSE_JWT_SECRET, issuer: e.PULSE_JWT_ISSUER, audience: e.PULSE_JWT_AUDIENCE },
    allowedOrigins: e.PULSE_ALLOWED_ORIGINS,
    dataDir: e.PULSE_DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.PULSE_REDIS_PREFIX,
    nodeId: e.PULSE_NODE_ID,
    presence: {
      graceMs: e.PULSE_PRESENCE_GRACE_MS,
      ttlMs: e.PULSE_PRESENCE_TTL_MS,
      typingTtlMs: e.PULSE_TYPING_TTL_MS,
    },
    inbox: {
      slaMs: e.PULSE_INBOX_SLA_MS,
      slaPollMs: e.PULSE_INBOX_SLA_POLL_MS,
      retention: e.PULSE_INBOX_RETENTION,
    },
    notifications: { retention: e.PULSE_NOTIFICATION_RETENTION },
    limits: {
      maxPayloadBytes: e.PULSE_MAX_PAYLOAD_BYTES,
      maxBatch: e.PULSE_MAX_BATCH,
      maxSubscriptions: e.PULSE_MAX_SUBSCRIPTIONS,
      maxConnectionsPerUser: e.PULSE_MAX_CONNECTIONS_PER_USER,
      authTimeoutMs: e.PULSE_AUTH_TIMEOUT_MS,
      pingMs: e.PULSE_PING_MS,
      pongWaitMs: e.PULSE_PONG_WAIT_MS,
      slowDropBytes: e.PULSE_SLOW_DROP_BYTES,
      slowCloseBytes: e.PULSE_SLOW_CLOSE_BYTES,
      rateLimitPerSec: e.PULSE_RATE_LIMIT_PER_SEC,
      rateLimitBurst: e.PULSE_RATE_LIMIT_BURST,
      rateLimitUserPerSec: e.PULSE_RATE_LIMIT_USER_PER_SEC,
      rateLimitUserBurst: e.PULSE_RATE_LIMIT_USER_BURST,
      presenceRatePerSec: e.PULSE_PRESENCE_RATE_PER_SEC,
      presenceBurst: e.PULSE_PRESENCE_BURST,
      typingIntervalMs: e.PULSE_TYPING_INTERVAL_MS,
    },
    logLevel: e.PULSE_LOG_LEVEL,
  });
}

/** Fills every missing option with its one-machine default. */
export function resolveConfig(input: PulseConfigInput = {}): PulseConfig {
  const defaults = envSchema.parse({});
  const secret = input.jwt?.secret ?? randomBytes(32).toString('base64url');
  return {
    host: input.host ?? defaults.HOST,
    port: input.port ?? defaults.PORT,
    production: input.production ?? false,
    demoMode: input.demoMode ?? !input.jwt?.secret,
    jwt: { secret, issuer: input.jwt?.issuer, audience: input.jwt?.audience },
    allowedOrigins: input.allowedOrigins ?? [],
    dataDir: input.dataDir ?? defaults.PULSE_DATA_DIR,
    databaseUrl: input.databaseUrl,
    redisUrl: input.redisUrl,
    redisPrefix: input.redisPrefix ?? defaults.PULSE_REDIS_PREFIX,
    nodeId: input.nodeId ?? `node-${randomBytes(4).toString('hex')}`,
    presence: {
      graceMs: input.presence?.graceMs ?? defaults.PULSE_PRESENCE_GRACE_MS,
      ttlMs: input.presence?.ttlMs ?? defaults.PULSE_PRESENCE_TTL_MS,
      typingTtlMs: input.presence?.typingTtlMs ?? defaults.PULSE_TYPING_TTL_MS,
    },
    inbox: {
      slaMs: input.inbox?.slaMs ?? defaults.PULSE_INBOX_SLA_MS,
      slaPollMs: input.inbox?.slaPollMs ?? defaults.PULSE_INBOX_SLA_POLL_MS,
      retention: input.inbox?.retention ?? defaults.PULSE_INBOX_RETENTION,
    },
    notifications: { retention: input.notifications?.retention ?? defaults.PULSE_NOTIFICATION_RETENTION },
    limits: {
      maxPayloadBytes: input.limits?.maxPayloadBytes ?? defaults.PULSE_MAX_PAYLOAD_BYTES,
      maxBatch: input.limits?.maxBatch ?? defaults.PULSE_MAX_BATCH,
      maxSubscriptions: input.limits?.maxSubscriptions ?? defaults.PULSE_MAX_SUBSCRIPTIONS,
      maxConnectionsPerUser: input.limits?.maxConnectionsPerUser ?? defaults.PULSE_MAX_CONNECTIONS_PER_USER,
      authTimeoutMs: input.limits?.authTimeoutMs ?? defaults.PULSE_AUTH_TIMEOUT_MS,
      pingMs: input.limits?.pingMs ?? defaults.PULSE_PING_MS,
      pongWaitMs: input.limits?.pongWaitMs ?? defaults.PULSE_PONG_WAIT_MS,
      slowDropBytes: input.limits?.slowDropBytes ?? defaults.PULSE_SLOW_DROP_BYTES,
      slowCloseBytes: input.limits?.slowCloseBytes ?? defaults.PULSE_SLOW_CLOSE_BYTES,
      rateLimitPerSec: input.limits?.rateLimitPerSec ?? defaults.PULSE_RATE_LIMIT_PER_SEC,
      rateLimitBurst: input.limits?.rateLimitBurst ?? defaults.PULSE_RATE_LIMIT_BURST,
      rateLimitUserPerSec: input.limits?.rateLimitUserPerSec ?? defaults.PULSE_RATE_LIMIT_USER_PER_SEC,
      rateLimitUserBurst: input.limits?.rateLimitUserBurst ?? defaults.PULSE_RATE_LIMIT_USER_BURST,
      presenceRatePerSec: input.limits?.presenceRatePerSec ?? defaults.PULSE_PRESENCE_RATE_PER_SEC,
      presenceBurst: input.limits?.presenceBurst ?? defaults.PULSE_PRESENCE_BURST,
      typingIntervalMs: input.limits?.typingIntervalMs ?? defaults.PULSE_TYPING_INTERVAL_MS,
    },
    logLevel: input.logLevel ?? defaults.PULSE_LOG_LEVEL,
  };
}
