import { type DemoToken, mintDemoTokens } from '../auth/demo.js';
import type { PulseConfig, PulseConfigInput } from '../config.js';
import { type PulseServer, type PulseServerOptions, startPulseServer } from '../server.js';
import { staticFilesRoute } from './demo-routes.js';
import { type DemoGenerator, type DemoGeneratorOptions, startDemoGenerator } from './generator.js';

export interface DemoServerOptions extends Omit<PulseServerOptions, 'config'> {
  config?: PulseConfigInput | PulseConfig;
  /** A built single-page app (e.g. `examples/dashboard/dist`) served under `/`. */
  staticDir?: string;
  /** Publish demo traffic (default true); options tune it. */
  generator?: boolean | DemoGeneratorOptions;
}

export interface DemoServer extends AsyncDisposable {
  server: PulseServer;
  generator: DemoGenerator | null;
  /** The demo users with their tokens (as `GET /demo/tokens` serves them). */
  tokens: DemoToken[];
  close(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * Starts a Pulse node in demo mode (tokens for the demo cast, `GET /demo/tokens`), optionally serving a
 * built app and publishing demo traffic. Refuses a production config.
 */
export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const { staticDir, generator: generatorOpt = true, config, ...rest } = opts;
  if (config?.production) throw new Error('The demo server never runs with NODE_ENV=production');
  const server = await startPulseServer({
    ...rest,
    config: { ...config, demoMode: true },
    routes: [...(rest.routes ?? []), ...(staticDir ? [staticFilesRoute(staticDir)] : [])],
  });
  const tokens = await mintDemoTokens(server.config.jwt);
  const generator = generatorOpt
    ? startDemoGenerator(server, generatorOpt === true ? {} : generatorOpt)
    : null;
  let closing: Promise<void> | null = null;
  const close = (closeOpts?: { graceMs?: number }) => {
    closing ??= (async () => {
      await generator?.stop();
      await server.close(closeOpts);
    })();
    return closing;
  };
  return { server, generator, tokens, close, [Symbol.asyncDispose]: () => close({ graceMs: 0 }) };
}
