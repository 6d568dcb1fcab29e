import { parseArgs } from 'node:util';
import { mintToken } from '../auth/token.js';
import { loadConfig } from '../config.js';
import { workspaceRoleSchema } from '../auth/auth.schema.js';

/**
 * `npm run token -- --sub alice --name Alice --workspace acme:admin [--workspace b:member] [--service] [--ttl 3600]`
 * prints a token signed with PULSE_JWT_SECRET.
 */
const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    name: { type: 'string' },
    workspace: { type: 'string', multiple: true },
    service: { type: 'boolean', default: false },
    ttl: { type: 'string', default: String(12 * 3600) },
  },
});
const config = loadConfig();
if (!values.sub) {
  console.error(
    'usage: npm run token -- --sub <user> [--name <name>] --workspace <id>:<member|admin> [--service] [--ttl <seconds>]',
  );
  process.exit(2);
}
if (config.demoMode) {
  console.error('PULSE_JWT_SECRET is not set: a token signed now would match no server. Set it and retry.');
  process.exit(2);
}
const workspaces: Record<string, 'member' | 'admin'> = {};
for (const spec of values.workspace ?? []) {
  const [id, role = 'member'] = spec.split(':');
  const parsed = workspaceRoleSchema.safeParse(role);
  if (!id || !parsed.success) {
    console.error(`invalid --workspace "${spec}" (expected <id>:member or <id>:admin)`);
    process.exit(2);
  }
  workspaces[id] = parsed.data;
}
console.log(
  await mintToken(config.jwt, {
    sub: values.sub,
    name: values.name,
    workspaces,
    service: values.service,
    expiresInSec: Number(values.ttl),
  }),
);
