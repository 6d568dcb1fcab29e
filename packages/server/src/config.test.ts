import { describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../test/support/vitest.js';
import { assertCanListen, configOptions, loadConfig, resolveConfig } from './config.js';
import { startPulseServer } from './server.js';

const SECRET = TEST_SECRET;

/** Every `env` name of the options table, flattened. */
function envNames(tree: object): string[] {
  return Object.values(tree).flatMap((node) =>
    typeof (node as { env?: unknown }).env === 'string' ? [(node as { env: string }).env] : envNames(node),
  );
}

describe('config', () => {
  it('runs on defaults with a secret', () => {
    const config = loadConfig({ PULSE_JWT_SECRET: SECRET });
    expect(config).toMatchObject({
      port: 3001,
      demoMode: false,
      secretGenerated: false,
      dataDir: './data',
      limits: { maxPayloadBytes: 65_536, maxConnections: 50_000, headersTimeoutMs: 10_000 },
      jwt: { secret: SECRET },
    });
  });

  it('reads the startup nodes of a Redis Cluster from PULSE_REDIS_CLUSTER (comma-separated)', () => {
    const config = loadConfig({
      PULSE_JWT_SECRET: SECRET,
      PULSE_REDIS_CLUSTER: '10.0.0.1:7001, 10.0.0.2:7002,redis://10.0.0.3:7003',
    });
    expect(config.redisCluster).toEqual(['10.0.0.1:7001', '10.0.0.2:7002', 'redis://10.0.0.3:7003']);
    expect(loadConfig({ PULSE_JWT_SECRET: SECRET }).redisCluster).toBeUndefined();
  });

  it('refuses to start without a secret unless demo mode is asked for', () => {
    for (const env of [{}, { NODE_ENV: 'staging' }, { NODE_ENV: 'prod' }, { PULSE_DEMO: 'false' }]) {
      expect(() => loadConfig(env)).toThrow(
        'PULSE_JWT_SECRET is required (at least 32 characters). For a local demo with generated tokens, set PULSE_DEMO=true',
      );
    }
  });

  it('turns demo mode on only with PULSE_DEMO=true, and generates the secret then', () => {
    const config = loadConfig({ PULSE_DEMO: 'true' });
    expect(config).toMatchObject({ demoMode: true, secretGenerated: true });
    expect(config.jwt.secret.length).toBeGreaterThanOrEqual(32);
    expect(loadConfig({ PULSE_DEMO: '1', PULSE_JWT_SECRET: SECRET })).toMatchObject({
      demoMode: true,
      secretGenerated: false,
    });
  });

  it('refuses demo mode on a non-loopback host unless forced', () => {
    expect(() => loadConfig({ PULSE_DEMO: 'true', HOST: '0.0.0.0' })).toThrow(
      'Demo mode refuses to listen on the non-loopback host "0.0.0.0"',
    );
    expect(() => loadConfig({ PULSE_DEMO: 'true', HOST: '10.1.2.3' })).toThrow(/PULSE_DEMO_FORCE=true/);
    expect(loadConfig({ PULSE_DEMO: 'true', HOST: '0.0.0.0', PULSE_DEMO_FORCE: 'true' }).demoMode).toBe(true);
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.8.9.10'])
      expect(loadConfig({ PULSE_DEMO: 'true', HOST: host }).host).toBe(host);
    expect(() => resolveConfig({ demoMode: true, host: '0.0.0.0' })).toThrow(/set demoForce=true/);
  });

  it('names every invalid variable', () => {
    expect(() => loadConfig({ PORT: 'http', PULSE_JWT_SECRET: 'short' })).toThrow(
      /Invalid Pulse configuration \(environment\):\n {2}PORT: .*\n {2}PULSE_JWT_SECRET: must be at least 32 characters/,
    );
  });

  it('enforces the 32-character secret minimum for in-code configuration too', () => {
    expect(() => resolveConfig({ jwt: { secret: 'short' } })).toThrow(
      'Invalid Pulse configuration (in-code):\n  jwt.secret: must be at least 32 characters',
    );
    expect(() => resolveConfig({ limits: { maxBatch: -1 } })).toThrow(/limits\.maxBatch: /);
  });

  it('refuses a short secret given to startPulseServer in code, and an unknown PULSE_DEMO value', async () => {
    await expect(
      startPulseServer({ sqliteFile: ':memory:', config: { port: 0, jwt: { secret: 'short' } } }),
    ).rejects.toThrow('jwt.secret: must be at least 32 characters');
    expect(() => loadConfig({ PULSE_DEMO: 'yes' })).toThrow(/PULSE_DEMO: Invalid input: expected boolean/);
  });

  it('refuses production without a secret, and demo mode in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      'PULSE_JWT_SECRET is required when NODE_ENV=production',
    );
    expect(() => loadConfig({ NODE_ENV: 'production', PULSE_DEMO: 'true' })).toThrow(
      'PULSE_DEMO cannot be set when NODE_ENV=production.',
    );
  });

  it('lets an in-code config without a secret resolve, but never listen unless in demo mode', () => {
    const config = resolveConfig({});
    expect(config).toMatchObject({ demoMode: false, secretGenerated: true });
    expect(() => assertCanListen(config)).toThrow('A Pulse server needs jwt.secret (PULSE_JWT_SECRET');
    expect(() => assertCanListen(resolveConfig({ demoMode: true }))).not.toThrow();
    expect(() => assertCanListen(resolveConfig({ jwt: { secret: SECRET } }))).not.toThrow();
    // A resolved config passed back in keeps what it was.
    expect(resolveConfig(config)).toMatchObject({
      secretGenerated: true,
      jwt: { secret: config.jwt.secret },
    });
  });

  it('refuses a batch cap below the subscription cap (reconnects re-send every subscription in one frame)', () => {
    expect(() =>
      loadConfig({ PULSE_JWT_SECRET: SECRET, PULSE_MAX_BATCH: '10', PULSE_MAX_SUBSCRIPTIONS: '100' }),
    ).toThrow('PULSE_MAX_BATCH (10) must be at least PULSE_MAX_SUBSCRIPTIONS (100)');
  });

  it('reads every option of the table from its variable, and in code from its path', () => {
    const env = loadConfig({
      PULSE_JWT_SECRET: SECRET,
      PULSE_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
      PULSE_OPS_PORT: '9100',
      PULSE_METRICS_TOKEN: 'metrics-token-0123456789',
      PULSE_QUERY_RATE_PER_SEC: '7',
      PULSE_REQUEST_TIMEOUT_MS: '20000',
    });
    expect(env).toMatchObject({
      allowedOrigins: ['https://a.example', 'https://b.example'],
      ops: { port: 9100, metricsToken: 'metrics-token-0123456789' },
      limits: { queryRatePerSec: 7, requestTimeoutMs: 20_000 },
    });
    const code = resolveConfig({
      jwt: { secret: SECRET },
      ops: { port: 9100 },
      limits: { queryRatePerSec: 7 },
    });
    expect(code).toMatchObject({ ops: { port: 9100 }, limits: { queryRatePerSec: 7, queryBurst: 200 } });
    const names = envNames(configOptions);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('config: notification webhook and dashboard history from the environment', () => {
  it('parses webhook rules per kind and refuses a malformed rule string', () => {
    const config = loadConfig({
      PULSE_JWT_SECRET: TEST_SECRET,
      PULSE_NOTIFICATION_WEBHOOK_URL: 'https://hooks.example.test/pulse',
      PULSE_NOTIFICATION_WEBHOOK_SECRET: 'a-webhook-secret-of-some-length',
      PULSE_NOTIFICATION_WEBHOOK_RULES: 'crisis:urgent,high:120000; post_failed:urgent:900000',
      PULSE_DASHBOARD_ROLLUP_MS: '5000',
    });
    expect(config.notificationWebhook.rules).toEqual({
      crisis: { priorities: ['urgent', 'high'], delayMs: 120_000 },
      post_failed: { priorities: ['urgent'], delayMs: 900_000 },
    });
    expect(config.dashboardHistory.rollupMs).toBe(5_000);
    expect(() =>
      loadConfig({ PULSE_JWT_SECRET: TEST_SECRET, PULSE_NOTIFICATION_WEBHOOK_RULES: 'crisis-urgent' }),
    ).toThrow(/PULSE_NOTIFICATION_WEBHOOK_RULES/);
  });

  it('refuses to start a node whose webhook names an unknown kind or has no secret', async () => {
    await expect(
      startPulseServer({
        sqliteFile: ':memory:',
        config: {
          port: 0,
          logLevel: 'silent',
          jwt: { secret: TEST_SECRET },
          notificationWebhook: { url: 'https://hooks.example.test/pulse', rules: {} },
        },
      }),
    ).rejects.toThrow(/PULSE_NOTIFICATION_WEBHOOK_SECRET is required/);
    await expect(
      startPulseServer({
        sqliteFile: ':memory:',
        config: {
          port: 0,
          logLevel: 'silent',
          jwt: { secret: TEST_SECRET },
          notificationWebhook: {
            url: 'https://hooks.example.test/pulse',
            secret: 'a-webhook-secret-of-some-length',
            rules: { invoice_paid: { priorities: ['urgent'], delayMs: 1_000 } },
          },
        },
      }),
    ).rejects.toThrow(/unknown notification kind in invoice_paid/);
  });
});
