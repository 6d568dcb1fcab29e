import { describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../auth/token.js';
import { CliError, runTokenCommand, tokenUsage } from './token.js';

const env = { PULSE_JWT_SECRET: 'cli-test-secret-long-enough-for-hs256-0123456789' };

describe('pulse-server token', () => {
  it('mints a token the server verifies, with the workspaces and roles given', async () => {
    const token = await runTokenCommand(
      ['--sub', 'alice', '--name', 'Alice', '--workspace', 'acme:admin', '--workspace', 'globex'],
      env,
    );
    const principal = await createTokenVerifier({ secret: env.PULSE_JWT_SECRET }).verify(token);
    expect(principal).toMatchObject({
      userId: 'alice',
      name: 'Alice',
      workspaces: { acme: 'admin', globex: 'member' },
      service: false,
    });
  });

  it('refuses to sign without PULSE_JWT_SECRET (exit 2, says why)', async () => {
    const error = await runTokenCommand(['--sub', 'alice'], {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({
      exitCode: 2,
      message: 'PULSE_JWT_SECRET is not set: a token signed now would match no server. Set it and retry.',
    });
  });

  it('bad usage is a CliError with the usage: no --sub, a bad role, a bad --ttl, an unknown option', async () => {
    const failure = (args: string[]) =>
      runTokenCommand(args, env).then(
        () => {
          throw new Error(`expected a CliError for ${args.join(' ')}`);
        },
        (e: unknown) => e as CliError,
      );
    expect(await failure([])).toMatchObject({ exitCode: 2, message: tokenUsage });
    expect(await failure(['--sub', 'a', '--workspace', 'acme:owner'])).toMatchObject({
      exitCode: 2,
      message: 'invalid --workspace "acme:owner" (expected <id>:member or <id>:admin)',
    });
    expect(await failure(['--sub', 'a', '--ttl', 'soon'])).toMatchObject({
      exitCode: 2,
      message: 'invalid --ttl "soon" (expected whole seconds)',
    });
    const unknown = await failure(['--sub', 'a', '--bogus']);
    expect(unknown).toBeInstanceOf(CliError);
    expect(unknown.message).toContain("Unknown option '--bogus'");
    expect(unknown.message).toContain(tokenUsage);
  });

  it('--help prints the usage', async () => {
    expect(await runTokenCommand(['--help'], {})).toBe(tokenUsage);
  });
});
