import { parseArgs } from 'node:util';
import { workspaceRoleSchema } from '../auth/auth.schema.js';
import { mintToken } from '../auth/token.js';
import { loadConfig } from '../config.js';

export const tokenUsage = `usage: pulse-server token --sub <user> [--name <name>] --workspace <id>:<member|admin>
                          [--workspace …] [--service] [--ttl <seconds>]

Prints a JWT signed with PULSE_JWT_SECRET (and PULSE_JWT_ISSUER / PULSE_JWT_AUDIENCE if set):
the same environment the server runs with.`;

/** A CLI failure with the exit code to leave with (2: bad usage). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/**
 * `pulse-server token --sub alice --name Alice --workspace acme:admin [--workspace b:member] [--service] [--ttl 3600]`:
 * returns a token signed with the environment's PULSE_JWT_SECRET.
 */
export async function runTokenCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  let values: {
    sub?: string;
    name?: string;
    workspace?: string[];
    service?: boolean;
    ttl?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        sub: { type: 'string' },
        name: { type: 'string' },
        workspace: { type: 'string', multiple: true },
        service: { type: 'boolean', default: false },
        ttl: { type: 'string', default: String(12 * 3600) },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new CliError(`${error instanceof Error ? error.message : error}\n${tokenUsage}`);
  }
  if (values.help) return tokenUsage;
  if (!values.sub) throw new CliError(tokenUsage);
  // NOTE: checked before loading the config: without a secret no server would accept the token.
  if (!env.PULSE_JWT_SECRET)
    throw new CliError(
      'PULSE_JWT_SECRET is not set: a token signed now would match no server. Set it and retry.',
    );
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new CliError(`invalid --ttl "${values.ttl}" (expected whole seconds)`);
  const workspaces: Record<string, 'member' | 'admin'> = {};
  for (const spec of values.workspace ?? []) {
    const [id, role = 'member'] = spec.split(':');
    const parsed = workspaceRoleSchema.safeParse(role);
    if (!id || !parsed.success)
      throw new CliError(`invalid --workspace "${spec}" (expected <id>:member or <id>:admin)`);
    workspaces[id] = parsed.data;
  }
  const config = loadConfig(env);
  return mintToken(config.jwt, {
    sub: values.sub,
    name: values.name,
    workspaces,
    service: values.service,
    expiresInSec: ttl,
  });
}
