import type { ClaimsMapper } from '@pulse/server';

/** What the app's identity provider puts in its tokens. */
export interface ProviderClaims {
  sub: string;
  name?: string;
  org_id?: string;
  roles?: string[];
}

/**
 * Maps the provider's `org_id` / `roles` onto Pulse's workspaces and roles: the org is the
 * workspace, `org:admin` makes an admin, `org:service` a backend service scoped to the org.
 */
export const mapClaims: ClaimsMapper = (payload) => {
  const claims = payload as unknown as ProviderClaims;
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  return {
    userId: claims.sub,
    name: claims.name,
    workspaces: claims.org_id ? { [claims.org_id]: roles.includes('org:admin') ? 'admin' : 'member' } : {},
    service: roles.includes('org:service'),
  };
};
