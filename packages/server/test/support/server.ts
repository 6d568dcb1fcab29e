import { Writable } from 'node:stream';
import type { AnyTRPCRouter } from '@trpc/server';
import { type MintOptions, mintToken } from '../../src/auth/token.js';
import type { PulseConfigInput } from '../../src/config.js';
import { createLogger } from '../../src/infra/log.js';
import type { AppRouter } from '../../src/router.js';
import { type PulseServer, type PulseServerOptions, startPulseServer } from '../../src/server.js';

/** The HS256 secret every test node (in-process or spawned) shares. */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

export type TestServerOptions<TRouter extends AnyTRPCRouter = AppRouter> = Omit<
  PulseServerOptions<TRouter>,
  'config'
> & { config?: PulseConfigInput };

export type TestServer<TRouter extends AnyTRPCRouter = AppRouter> = PulseServer<TRouter> &
  AsyncDisposable & {
    /** A token this node accepts (HS256 with its secret). */
    token(opts: MintOptions): Promise<string>;
  };

/**
 * A real Pulse node on an ephemeral loopback port with an in-memory SQLite store, silent logs,
 * the test secret and short presence timers (grace 200 ms, TTL 2 s, typing 300 ms); everything is
 * overridable. `await using server = await startTestServer()` closes it at the end of the scope.
 */
export async function startTestServer<TRouter extends AnyTRPCRouter = AppRouter>(
  opts: TestServerOptions<TRouter> = {},
): Promise<TestServer<TRouter>> {
  const config: PulseConfigInput = {
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    ...opts.config,
    jwt: { secret: TEST_SECRET, ...opts.config?.jwt },
    presence: { graceMs: 200, ttlMs: 2_000, typingTtlMs: 300, ...opts.config?.presence },
  };
  const server = await startPulseServer<TRouter>({ sqliteFile: ':memory:', ...opts, config });
  return Object.assign(server, {
    token: (o: MintOptions) => mintToken(server.config.jwt, o),
    [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }),
  });
}

/** A token signed with {@link TEST_SECRET}: valid on every test node and spawned cluster node. */
export const mintTestToken = (opts: MintOptions) => mintToken({ secret: TEST_SECRET }, opts);

/** A debug-level logger whose JSON lines land in `lines` (for log assertions). */
export function memoryLog(nodeId = 'node-log') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', nodeId, destination }) };
}
