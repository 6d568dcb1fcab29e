import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('config', () => {
  it('runs on defaults in demo mode', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3001,
      demoMode: true,
      dataDir: './data',
      limits: { maxPayloadBytes: 65_536 },
    });
    expect(config.jwt.secret.length).toBeGreaterThanOrEqual(32);
  });

  it('names every invalid variable', () => {
    expect(() => loadConfig({ PORT: 'http', PULSE_JWT_SECRET: 'short' })).toThrow(
      /Invalid Pulse configuration:\n {2}PORT: .*\n {2}PULSE_JWT_SECRET: PULSE_JWT_SECRET must be at least 32 characters/,
    );
  });

  it('refuses production without a secret', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(
      'PULSE_JWT_SECRET is required when NODE_ENV=production',
    );
  });

  it('refuses a batch cap below the subscription cap (reconnects re-send every subscription in one frame)', () => {
    expect(() => loadConfig({ PULSE_MAX_BATCH: '10', PULSE_MAX_SUBSCRIPTIONS: '100' })).toThrow(
      'PULSE_MAX_BATCH (10) must be at least PULSE_MAX_SUBSCRIPTIONS (100)',
    );
  });
});
