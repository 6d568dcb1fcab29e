import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * One configuration option, written once: its environment variable, its schema (which validates
 * environment and in-code values alike) and, through the schema's `.default()`, its default.
 */
interface Option<S extends z.ZodType = z.ZodType> {
  readonly env: string;
  readonly schema: S;
  /** Turns the environment's string into the value the schema expects (e.g. comma-separated lists). */
  readonly fromEnv?: (raw: string) => unknown;
}

const option = <S extends z.ZodType>(
  env: string,
  schema: S,
  fromEnv?: (raw: string) => unknown,
): Option<S> => ({
  env,
  schema,
  fromEnv,
});

const int = () => z.coerce.number().int();
const ms = (fallback: number) => int().nonnegative().default(fallback);
const positive = (fallback: number) => int().positive().default(fallback);
const bool = (fallback: boolean) => z.boolean().default(fallback);
/** `true`/`1`, `false`/`0`, or empty (default); anything else is left for the schema to refuse. */
const envBool = (raw: string) => {
  if (raw === '') return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return raw;
};
const csv = (raw: string) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** `crisis:urgent,high:120000;post_failed:urgent:900000` → `{ crisis: { priorities, delayMs } , … }`. */
function parseWebhookRules(raw: string): unknown {
  const rules: Record<string, { priorities: string[]; delayMs: number }> = Object.create(null);
  for (const part of raw
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [kind, priorities, delay] = part.split(':');
    if (!kind || !priorities || delay === undefined) return raw; // the schema refuses the string
    rules[kind] = { priorities: csv(priorities), delayMs: Number(delay) };
  }
  return { ...rules };
}

const SECRET_MESSAGE = 'must be at least 32 characters';

/**
 * Every option of a Pulse node (see README "Configuration"). The typed config, environment parsing
 * and `resolveConfig`'s defaults are all derived from this table.
 */
export const configOptions = {
  host: option('HOST', z.string().min(1).default('127.0.0.1')),
  port: option('PORT', int().min(0).max(65535).default(3001)),
  /** Demo mode: a generated secret, demo tokens at `GET /demo/tokens`. Only when asked for. */
  demoMode: option('PULSE_DEMO', bool(false), envBool),
  /** Allow demo mode on a non-loopback host (a demo on a trusted LAN). */
  demoForce: option('PULSE_DEMO_FORCE', bool(false), envBool),
  jwt: {
    /** HS256 secret, at least 32 characters (required unless demo mode). */
    secret: option('PULSE_JWT_SECRET', z.string().min(32, SECRET_MESSAGE).optional()),
    issuer: option('PULSE_JWT_ISSUER', z.string().optional()),
    audience: option('PULSE_JWT_AUDIENCE', z.string().optional()),
    /**
     * The identity provider's key set (`https://…/.well-known/jwks.json`): RS256/ES256 tokens are
     * verified against it (cached, refetched for an unknown key id). Requires `issuer` and `audience`.
     */
    jwksUrl: option('PULSE_JWKS_URL', z.url({ protocol: /^https?$/ }).optional()),
    /** Algorithms accepted from the key set (default RS256, ES256); HS256 is never taken from it. */
    algorithms: option(
      'PULSE_JWT_ALGORITHMS',
      z
        .array(
          z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
        )
        .min(1)
        .default(['RS256', 'ES256']),
      csv,
    ),
    /** How long a fetched key set is used before it is refetched. */
    jwksCacheMs: option('PULSE_JWKS_CACHE_MS', ms(10 * 60_000)),
    /** Least time between two fetches (an unknown key id refetches at most this often). */
    jwksCooldownMs: option('PULSE_JWKS_COOLDOWN_MS', ms(30_000)),
    /** Claim naming the token's workspace (e.g. `org_id`); without it tokens carry `workspaces`. */
    workspaceClaim: option('PULSE_JWT_WORKSPACE_CLAIM', z.string().min(1).optional()),
    /** Claim holding the caller's roles (a string or a list, e.g. `roles`), read with `workspaceClaim`. */
    rolesClaim: option('PULSE_JWT_ROLES_CLAIM', z.string().min(1).default('roles')),
    /** Roles (from `rolesClaim`) that make the caller an admin of the workspace. */
    adminRoles: option('PULSE_JWT_ADMIN_ROLES', z.array(z.string()).default(['admin']), csv),
    /** Role (from `rolesClaim`) that makes the caller a backend service scoped to the workspace. */
    serviceRole: option('PULSE_JWT_SERVICE_ROLE', z.string().min(1).default('service')),
  },
  allowedOrigins: option('PULSE_ALLOWED_ORIGINS', z.array(z.string()).default([]), csv),
  dataDir: option('PULSE_DATA_DIR', z.string().default('./data')),
  databaseUrl: option('DATABASE_URL', z.string().optional()),
  redisUrl: option('REDIS_URL', z.string().optional()),
  /**
   * A Redis Cluster's startup nodes (`host:port,host:port`) instead of `redisUrl`: the bus uses sharded
   * pub/sub, presence and the shared counters a hash-tagged slot (docs/scale-out.md "Redis Cluster").
   */
  redisCluster: option('PULSE_REDIS_CLUSTER', z.array(z.string().min(1)).optional(), csv),
  /** Prefix of every Redis key and channel (several clusters or test runs on one Redis). */
  redisPrefix: option('PULSE_REDIS_PREFIX', z.string().default('pulse:')),
  nodeId: option('PULSE_NODE_ID', z.string().min(1).optional()),
  /** Ops endpoints (/metrics, /readyz): see docs/security.md "Ops endpoints". */
  ops: {
    /** When set, /metrics and /readyz are served on this port only (not on the public port). */
    port: option('PULSE_OPS_PORT', int().min(0).max(65535).optional()),
    /** Interface of the ops port (default: `host`). */
    host: option('PULSE_OPS_HOST', z.string().min(1).optional()),
    /** When set, /metrics needs `Authorization: Bearer <token>`; otherwise only loopback callers get it. */
    metricsToken: option(
      'PULSE_METRICS_TOKEN',
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
  },
  presence: {
    graceMs: option('PULSE_PRESENCE_GRACE_MS', ms(5_000)),
    ttlMs: option('PULSE_PRESENCE_TTL_MS', ms(60_000)),
    typingTtlMs: option('PULSE_TYPING_TTL_MS', ms(5_000)),
  },
  inbox: {
    /** Default reply SLA. */
    slaMs: option('PULSE_INBOX_SLA_MS', ms(15 * 60_000)),
    /** How often each node looks for breaches. */
    slaPollMs: option('PULSE_INBOX_SLA_POLL_MS', ms(1_000)),
    /** Replayable events per workspace. */
    retention: option('PULSE_INBOX_RETENTION', positive(1_000)),
  },
  notifications: { retention: option('PULSE_NOTIFICATION_RETENTION', positive(500)) },
  limits: {
    maxPayloadBytes: option('PULSE_MAX_PAYLOAD_BYTES', positive(64 * 1024)),
    /** Requests per WebSocket frame and per HTTP batch. */
    maxBatch: option('PULSE_MAX_BATCH', positive(128)),
    maxSubscriptions: option('PULSE_MAX_SUBSCRIPTIONS', positive(100)),
    maxConnectionsPerUser: option('PULSE_MAX_CONNECTIONS_PER_USER', positive(50)),
    /** Sockets per client IP that have not authenticated yet (HTTP 429 before the handshake past it). */
    maxUnauthenticatedPerIp: option('PULSE_MAX_UNAUTHENTICATED_PER_IP', positive(100)),
    /**
     * Sockets between upgrade and a checked token, per node (load shedding in a reconnect storm: past
     * it, upgrades get HTTP 503 + Retry-After before the handshake; clients retry with jitter).
     * Default: no limit.
     */
    maxPendingHandshakes: option('PULSE_MAX_PENDING_HANDSHAKES', int().positive().optional()),
    /** Queries and mutations awaiting their reply per connection (TOO_MANY_REQUESTS past it). */
    maxInFlight: option('PULSE_MAX_IN_FLIGHT', positive(128)),
    /** Open TCP connections per node (HTTP and WebSocket together); past it new ones are dropped. */
    maxConnections: option('PULSE_MAX_CONNECTIONS', positive(50_000)),
    /**
     * Connections the kernel queues before Pulse accepts them (`listen` backlog; Linux caps it at
     * `net.core.somaxconn`). Node's default, 511, overflowed in the 10,000-client reconnect storm
     * (bench:storm): a refused SYN waits for the client's TCP retransmit, seconds later.
     */
    listenBacklog: option('PULSE_LISTEN_BACKLOG', positive(4_096)),
    /** Time a client has to send its request headers. */
    headersTimeoutMs: option('PULSE_HEADERS_TIMEOUT_MS', positive(10_000)),
    /** Time a client has to send a whole request, body included (HTTP 408 after it). */
    requestTimeoutMs: option('PULSE_REQUEST_TIMEOUT_MS', positive(30_000)),
    /** An idle keep-alive HTTP connection is closed after this. */
    keepAliveTimeoutMs: option('PULSE_KEEP_ALIVE_TIMEOUT_MS', positive(5_000)),
    authTimeoutMs: option('PULSE_AUTH_TIMEOUT_MS', ms(10_000)),
    pingMs: option('PULSE_PING_MS', ms(25_000)),
    pongWaitMs: option('PULSE_PONG_WAIT_MS', ms(10_000)),
    slowDropBytes: option('PULSE_SLOW_DROP_BYTES', positive(256 * 1024)),
    slowCloseBytes: option('PULSE_SLOW_CLOSE_BYTES', positive(1024 * 1024)),
    rateLimitPerSec: option('PULSE_RATE_LIMIT_PER_SEC', positive(20)),
    rateLimitBurst: option('PULSE_RATE_LIMIT_BURST', positive(50)),
    rateLimitUserPerSec: option('PULSE_RATE_LIMIT_USER_PER_SEC', positive(50)),
    rateLimitUserBurst: option('PULSE_RATE_LIMIT_USER_BURST', positive(100)),
    /** Queries per connection (HTTP: per user); subscriptions are never limited. */
    queryRatePerSec: option('PULSE_QUERY_RATE_PER_SEC', positive(100)),
    queryBurst: option('PULSE_QUERY_BURST', positive(200)),
    presenceRatePerSec: option('PULSE_PRESENCE_RATE_PER_SEC', positive(2)),
    presenceBurst: option('PULSE_PRESENCE_BURST', positive(10)),
    typingIntervalMs: option('PULSE_TYPING_INTERVAL_MS', ms(2_000)),
  },
  /** The outgoing webhook for notifications left unseen (docs/notifications.md); off without a URL. */
  notificationWebhook: {
    url: option('PULSE_NOTIFICATION_WEBHOOK_URL', z.url().optional()),
    /** HMAC-SHA256 key of the signature header (required with a URL). */
    secret: option('PULSE_NOTIFICATION_WEBHOOK_SECRET', z.string().min(16).optional()),
    /** `kind:priority,priority:delayMs;…`, e.g. `crisis:urgent,high:120000;post_failed:urgent:900000`. */
    rules: option(
      'PULSE_NOTIFICATION_WEBHOOK_RULES',
      z
        .record(
          z.string(),
          z.object({ priorities: z.array(z.string()).min(1), delayMs: int().nonnegative() }),
        )
        .default({}),
      parseWebhookRules,
    ),
    pollMs: option('PULSE_NOTIFICATION_WEBHOOK_POLL_MS', ms(1_000)),
    maxAttempts: option('PULSE_NOTIFICATION_WEBHOOK_MAX_ATTEMPTS', positive(8)),
    timeoutMs: option('PULSE_NOTIFICATION_WEBHOOK_TIMEOUT_MS', positive(10_000)),
  },
  /** Dashboard history retention and rollup (docs/dashboard.md). */
  dashboardHistory: {
    rawRetentionMs: option('PULSE_DASHBOARD_RAW_RETENTION_MS', positive(2 * 3_600_000)),
    minuteRetentionMs: option('PULSE_DASHBOARD_MINUTE_RETENTION_MS', positive(48 * 3_600_000)),
    hourRetentionMs: option('PULSE_DASHBOARD_HOUR_RETENTION_MS', positive(90 * 86_400_000)),
    /** How often each node rolls raw points into buckets (0 = never). */
    rollupMs: option('PULSE_DASHBOARD_ROLLUP_MS', ms(10_000)),
  },
  logLevel: option(
    'PULSE_LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
};

type OptionsTree = { readonly [key: string]: Option | OptionsTree };
type OutputOf<N> = N extends Option<infer S> ? z.output<S> : ValuesOf<N>;
type OptionalKey<T, K extends keyof T> =
  T[K] extends Option<infer S> ? (undefined extends z.output<S> ? K : never) : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The values of an options tree: an option whose schema allows `undefined` is an optional field. */
type ValuesOf<T> = Simplify<
  { -readonly [K in keyof T as K extends OptionalKey<T, K> ? never : K]: OutputOf<T[K]> } & {
    -readonly [K in keyof T as OptionalKey<T, K>]?: Exclude<OutputOf<T[K]>, undefined>;
  }
>;
type Resolved = ValuesOf<typeof configOptions>;

/** Typed runtime configuration of one Pulse node (one field per row of `configOptions`). */
export type PulseConfig = Omit<Resolved, 'jwt' | 'nodeId'> & {
  /** `NODE_ENV=production` (from the environment; in code: explicit). */
  production: boolean;
  jwt: Omit<Resolved['jwt'], 'secret'> & { secret: string };
  /** True when no secret was configured and `jwt.secret` was generated for this process. */
  secretGenerated: boolean;
  nodeId: string;
};

/** Partial overrides accepted by `startPulseServer` (tests, embedding): any option, one level deep. */
export type PulseConfigInput = {
  [K in keyof PulseConfig]?: PulseConfig[K] extends readonly unknown[]
    ? PulseConfig[K]
    : PulseConfig[K] extends object
      ? Partial<PulseConfig[K]>
      : PulseConfig[K];
};

const isOption = (value: Option | OptionsTree): value is Option =>
  typeof (value as Option).env === 'string' && (value as Option).schema instanceof z.ZodType;

interface Issue {
  where: string;
  message: string;
}

/** Validates `read(option, path)` for every option of the table; collects every issue. */
function build(
  tree: OptionsTree,
  read: (opt: Option, path: string[]) => unknown,
  issues: Issue[],
  label: (opt: Option, path: string[]) => string,
  path: string[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(tree)) {
    const here = [...path, key];
    if (!isOption(node)) {
      out[key] = build(node, read, issues, label, here);
      continue;
    }
    const parsed = node.schema.safeParse(read(node, here));
    if (parsed.success) out[key] = parsed.data;
    else
      for (const issue of parsed.error.issues)
        issues.push({ where: label(node, here), message: issue.message });
  }
  return out;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/;

/** True for an interface only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
}

function fail(kind: 'environment' | 'in-code', issues: Issue[]): never {
  const lines = issues.map((issue) => `  ${issue.where}: ${issue.message}`);
  throw new Error(`Invalid Pulse configuration (${kind}):\n${lines.join('\n')}`);
}

/** Cross-option rules, for the environment and in-code configuration alike. */
function finish(
  values: Record<string, unknown>,
  production: boolean,
  kind: 'environment' | 'in-code',
): PulseConfig {
  const v = values as unknown as Resolved;
  const names =
    kind === 'environment'
      ? {
          demo: 'PULSE_DEMO',
          force: 'PULSE_DEMO_FORCE',
          secret: 'PULSE_JWT_SECRET',
          batch: 'PULSE_MAX_BATCH',
          subs: 'PULSE_MAX_SUBSCRIPTIONS',
          headers: 'PULSE_HEADERS_TIMEOUT_MS',
          request: 'PULSE_REQUEST_TIMEOUT_MS',
        }
      : {
          demo: 'demoMode',
          force: 'demoForce',
          secret: 'jwt.secret',
          batch: 'limits.maxBatch',
          subs: 'limits.maxSubscriptions',
          headers: 'limits.headersTimeoutMs',
          request: 'limits.requestTimeoutMs',
        };
  if (v.demoMode && production) throw new Error(`${names.demo} cannot be set when NODE_ENV=production.`);
  if (v.demoMode && !v.demoForce && !isLoopbackHost(v.host)) {
    // NOTE: demo mode hands out tokens to anyone who asks; on a reachable interface that is an open door.
    throw new Error(
      `Demo mode refuses to listen on the non-loopback host "${v.host}" (anyone who can reach it gets tokens). Use HOST=127.0.0.1, or set ${names.force}=true on a network you trust.`,
    );
  }
  if (kind === 'environment' && v.limits.maxBatch < v.limits.maxSubscriptions) {
    // NOTE: wsLink re-sends every pending request in ONE frame after a reconnect; a batch cap below
    // the subscription cap would refuse that frame and the client's subscriptions would never resume.
    // In code (tests, embedding) the caller may set both low on purpose.
    throw new Error(
      `${names.batch} (${v.limits.maxBatch}) must be at least ${names.subs} (${v.limits.maxSubscriptions}): clients re-send all their subscriptions in one frame when they reconnect.`,
    );
  }
  if (v.jwt.jwksUrl && (!v.jwt.issuer || !v.jwt.audience)) {
    // NOTE: a key set signs tokens for many apps of a provider; without both checks any of them
    // (another tenant's, another audience's) would be accepted here.
    const [jwks, iss, aud] =
      kind === 'environment'
        ? ['PULSE_JWKS_URL', 'PULSE_JWT_ISSUER', 'PULSE_JWT_AUDIENCE']
        : ['jwt.jwksUrl', 'jwt.issuer', 'jwt.audience'];
    throw new Error(
      `${jwks} requires ${iss} and ${aud} (tokens of other apps of the provider must be refused).`,
    );
  }
  if (v.limits.headersTimeoutMs > v.limits.requestTimeoutMs) {
    throw new Error(
      `${names.headers} (${v.limits.headersTimeoutMs}) must not exceed ${names.request} (${v.limits.requestTimeoutMs}).`,
    );
  }
  return {
    ...v,
    production,
    // NOTE: without a secret a random one is generated; `startPulseServer` refuses to listen with it
    // unless demo mode was asked for (an in-process publisher verifies no token and needs none).
    jwt: { ...v.jwt, secret: v.jwt.secret ?? randomBytes(32).toString('base64url') },
    secretGenerated: v.jwt.secret === undefined,
    nodeId: v.nodeId ?? `node-${randomBytes(4).toString('hex')}`,
  };
}

/**
 * Reads the environment (the only place `process.env` is read) into a typed config.
 * Throws a readable error listing every invalid variable; refuses to run without a secret unless
 * demo mode is asked for (`PULSE_DEMO=true`).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): PulseConfig {
  const issues: Issue[] = [];
  const nodeEnv = env.NODE_ENV ?? 'development';
  const values = build(
    configOptions,
    (opt) => {
      const raw = env[opt.env];
      if (raw === undefined) return undefined;
      return opt.fromEnv ? opt.fromEnv(raw) : raw;
    },
    issues,
    (opt) => opt.env,
  );
  if (issues.length > 0) fail('environment', issues);
  const production = nodeEnv === 'production';
  const v = values as unknown as Resolved;
  // NOTE: with a key set (PULSE_JWKS_URL) the provider signs tokens; a shared secret is optional.
  if (!v.jwt.secret && !v.jwt.jwksUrl && !v.demoMode) {
    throw new Error(
      production
        ? 'PULSE_JWT_SECRET is required when NODE_ENV=production (demo mode is for development only).'
        : 'PULSE_JWT_SECRET is required (at least 32 characters). For a local demo with generated tokens, set PULSE_DEMO=true (`npm start` does).',
    );
  }
  return finish(values, production, 'environment');
}

/**
 * Fills every missing option with its default and validates the given ones with the same schemas
 * as the environment (e.g. a secret shorter than 32 characters is refused).
 */
export function resolveConfig(input: PulseConfigInput | PulseConfig = {}): PulseConfig {
  const issues: Issue[] = [];
  const given = input as Record<string, unknown>;
  const values = build(
    configOptions,
    (_opt, path) => {
      let value: unknown = given;
      for (const key of path) {
        if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
        value = (value as Record<string, unknown>)[key];
      }
      return value;
    },
    issues,
    (_opt, path) => path.join('.'),
  );
  if (issues.length > 0) fail('in-code', issues);
  const resolved = finish(values, input.production ?? false, 'in-code');
  // NOTE: a resolved config passed back in keeps its "generated secret" mark.
  return input.secretGenerated ? { ...resolved, secretGenerated: true } : resolved;
}

/**
 * Throws unless a node that verifies tokens has a configured secret or key set (`jwt.jwksUrl`), or
 * was asked for demo mode.
 */
export function assertCanListen(config: PulseConfig): void {
  if (config.demoMode || !config.secretGenerated || config.jwt.jwksUrl) return;
  throw new Error(
    'A Pulse server needs jwt.secret (PULSE_JWT_SECRET, at least 32 characters); pass demoMode: true (PULSE_DEMO=true) for a local demo with generated tokens.',
  );
}
