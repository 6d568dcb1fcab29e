import type { PulseConfig } from '../config.js';
import type { WorkspaceRole } from './auth.schema.js';
import { mintToken } from './token.js';

/**
 * The demo cast: two workspaces, admins and members, and one backend service scoped to the demo
 * workspaces (never unscoped: an unscoped service token is an operator of the whole node).
 */
export const demoUsers: ReadonlyArray<{
  sub: string;
  name: string;
  workspaces: Record<string, WorkspaceRole>;
  service?: boolean;
}> = [
  { sub: 'alice', name: 'Alice Admin', workspaces: { acme: 'admin' } },
  { sub: 'bob', name: 'Bob Member', workspaces: { acme: 'member' } },
  { sub: 'carol', name: 'Carol Member', workspaces: { acme: 'member', globex: 'member' } },
  { sub: 'dave', name: 'Dave Admin', workspaces: { globex: 'admin' } },
  {
    sub: 'demo-service',
    name: 'Demo Service',
    workspaces: { acme: 'admin', globex: 'admin' },
    service: true,
  },
];

export interface DemoToken {
  sub: string;
  name: string;
  workspaces: Record<string, WorkspaceRole>;
  service: boolean;
  token: string;
}

/** Mints one token per demo user (valid 7 days) with the node's secret. */
export async function mintDemoTokens(jwt: PulseConfig['jwt']): Promise<DemoToken[]> {
  return Promise.all(
    demoUsers.map(async (u) => ({
      sub: u.sub,
      name: u.name,
      workspaces: u.workspaces,
      service: u.service ?? false,
      token: await mintToken(jwt, { ...u, expiresInSec: 7 * 24 * 3600 }),
    })),
  );
}
