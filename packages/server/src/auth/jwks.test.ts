import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '../config.js';
import type { AppRouter } from '../router.js';
import { startPulseServer } from '../server.js';
import { canAccess } from './access.js';
import { createTokenVerifier } from './token.js';

/** A local identity provider: a JWKS endpoint on port 0 whose key set the test rotates. */
async function startJwksServer() {
  let keys: JWK[] = [];
  let fetches = 0;
  const server: Server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    setKeys: (next: JWK[]) => {
      keys = next;
    },
    fetches: () => fetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const sign = (
    claims: Record<string, unknown>,
    opts: { iss?: string; aud?: string; expSec?: number } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, kid })
      .setIssuer(opts.iss ?? 'https://idp.test/')
      .setAudience(opts.aud ?? 'pulse-app')
      .setSubject(String(claims.sub ?? 'user-1'))
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expSec ?? 600))
      .sign(privateKey);
  return { jwk, sign, publicKey };
}

const jwt = (url: string) =>
  resolveConfig({
    jwt: {
      jwksUrl: url,
      issuer: 'https://idp.test/',
      audience: 'pulse-app',
      jwksCooldownMs: 0,
      workspaceClaim: 'org_id',
      rolesClaim: 'roles',
      adminRoles: ['org:admin'],
    },
  }).jwt;

describe('identity provider tokens (JWKS)', () => {
  let idp: Awaited<ReturnType<typeof startJwksServer>>;
  beforeAll(async () => {
    idp = await startJwksServer();
  });
  afterAll(() => idp.close());

  it('verifies RS256 and ES256 tokens against the key set and maps org_id / roles onto workspaces', async () => {
    const rsa = await signingKey('RS256', 'rsa-1');
    const ec = await signingKey('ES256', 'ec-1');
    idp.setKeys([rsa.jwk, ec.jwk]);
    const verifier = createTokenVerifier(jwt(idp.url), { hs256: false });
    expect(
      await verifier.verify(await rsa.sign({ sub: 'alice', org_id: 'acme', roles: ['org:admin'] })),
    ).toMatchObject({
      userId: 'alice',
      workspaces: { acme: 'admin' },
      service: false,
    });
    expect(
      await verifier.verify(await ec.sign({ sub: 'bob', org_id: 'acme', roles: 'viewer' })),
    ).toMatchObject({
      userId: 'bob',
      workspaces: { acme: 'member' },
    });
    // `__proto__` as the org grants nothing (and sets no prototype).
    const eve = await verifier.verify(
      await rsa.sign({ sub: 'eve', org_id: '__proto__', roles: ['org:admin'] }),
    );
    expect(Object.keys(eve.workspaces)).toEqual([]);
    expect(Object.getPrototypeOf(eve.workspaces)).toBeNull();
    expect(canAccess(eve, '__proto__', 'member')).toBe(false);
    // A claims function overrides the declarative mapping.
    const custom = createTokenVerifier(jwt(idp.url), {
      hs256: false,
      claims: (p) => ({
        userId: String(p.sub),
        workspaces: { [String(p.tenant)]: 'member' },
        service: p.svc === true,
      }),
    });
    expect(await custom.verify(await rsa.sign({ sub: 'worker', tenant: 'globex', svc: true }))).toMatchObject(
      {
        userId: 'worker',
        workspaces: { globex: 'member' },
        service: true,
      },
    );
    // A mapping that yields a bad id is refused like bad Pulse claims.
    await expect(custom.verify(await rsa.sign({ sub: 'x', tenant: 'has space' }))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(/^Invalid token claims: workspaces/),
    });
  });

  it('refuses another issuer, another audience, an unpinned algorithm and HS256 signed with the public key', async () => {
    const rsa = await signingKey('RS256', 'rsa-2');
    idp.setKeys([rsa.jwk]);
    const verifier = createTokenVerifier(jwt(idp.url), { hs256: false });
    await expect(
      verifier.verify(await rsa.sign({ org_id: 'acme' }, { iss: 'https://evil.test/' })),
    ).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token claim "iss" does not match',
    });
    await expect(
      verifier.verify(await rsa.sign({ org_id: 'acme' }, { aud: 'other-app' })),
    ).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token claim "aud" does not match',
    });
    const esOnly = createTokenVerifier({ ...jwt(idp.url), algorithms: ['ES256'] }, { hs256: false });
    await expect(esOnly.verify(await rsa.sign({ org_id: 'acme' }))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token algorithm not allowed',
    });
    // Algorithm confusion: HS256 "signed" with the RSA public key's bytes.
    const pem = new TextEncoder().encode(JSON.stringify(rsa.jwk));
    const confused = await new SignJWT({ org_id: 'acme' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-2' })
      .setIssuer('https://idp.test/')
      .setAudience('pulse-app')
      .setSubject('mallory')
      .setExpirationTime('10m')
      .sign(pem);
    await expect(verifier.verify(confused)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token algorithm not allowed',
    });
  });

  it('a verifier with no key at all refuses every token (no default key)', async () => {
    const zeroKeyToken = await new SignJWT({ workspaces: { acme: 'admin' } })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('eve')
      .setExpirationTime('10m')
      .sign(new Uint8Array(32));
    const keyless = createTokenVerifier({ secret: 'x'.repeat(32) }, { hs256: false });
    await expect(keyless.verify(zeroKeyToken)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token algorithm not allowed',
    });
  });

  it('follows key rotation: a new key verifies once published, tokens of a removed key are refused', async () => {
    const oldKey = await signingKey('RS256', 'old');
    const newKey = await signingKey('RS256', 'new');
    idp.setKeys([oldKey.jwk]);
    const verifier = createTokenVerifier(jwt(idp.url), { hs256: false });
    const oldToken = await oldKey.sign({ sub: 'alice', org_id: 'acme' });
    expect((await verifier.verify(oldToken)).userId).toBe('alice');
    const before = idp.fetches();
    expect((await verifier.verify(oldToken)).userId).toBe('alice');
    expect(idp.fetches()).toBe(before); // cached: no fetch per token

    // Rotation: the provider removes the old key and publishes the new one.
    idp.setKeys([newKey.jwk]);
    expect((await verifier.verify(await newKey.sign({ sub: 'bob', org_id: 'acme' }))).userId).toBe('bob');
    await expect(verifier.verify(oldToken)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token signed by an unknown key',
    });
  });

  it('a node with PULSE_JWKS_URL needs issuer and audience, and serves RS256 callers end to end', async () => {
    expect(() => loadConfig({ PULSE_JWKS_URL: idp.url })).toThrow(
      'PULSE_JWKS_URL requires PULSE_JWT_ISSUER and PULSE_JWT_AUDIENCE',
    );
    expect(() => resolveConfig({ jwt: { jwksUrl: idp.url, issuer: 'https://idp.test/' } })).toThrow(
      'jwt.jwksUrl requires jwt.issuer and jwt.audience',
    );
    const env = loadConfig({
      PULSE_JWKS_URL: idp.url,
      PULSE_JWT_ISSUER: 'https://idp.test/',
      PULSE_JWT_AUDIENCE: 'pulse-app',
      PULSE_JWT_ALGORITHMS: 'ES256, RS256',
      PULSE_JWT_WORKSPACE_CLAIM: 'org_id',
    });
    expect(env.jwt).toMatchObject({ algorithms: ['ES256', 'RS256'], workspaceClaim: 'org_id' });
    expect(env.secretGenerated).toBe(true);

    const rsa = await signingKey('RS256', 'rsa-node');
    idp.setKeys([rsa.jwk]);
    // No secret configured: the node listens with the key set alone.
    const node = await startPulseServer({
      sqliteFile: ':memory:',
      config: { port: 0, logLevel: 'silent', jwt: { ...jwt(idp.url), secret: undefined } },
    });
    await using server = Object.assign(node, { [Symbol.asyncDispose]: () => node.close({ graceMs: 0 }) });
    const client = (token: string) =>
      createTRPCClient<AppRouter>({
        links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { authorization: `Bearer ${token}` } })],
      });
    const admin = client(await rsa.sign({ sub: 'alice', org_id: 'acme', roles: ['org:admin'] }));
    expect(await admin.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(0);
    const sent = await admin.notifications.send.mutate({
      workspaceId: 'acme',
      type: 'alert',
      title: 'hi',
      data: { alertType: 'system', severity: 'info', message: 'hi' },
    });
    expect(sent.created).toBe(true);
    // An HS256 token signed with the node's generated secret is refused: that secret verifies nothing.
    const { mintToken } = await import('./token.js');
    const forged = await mintToken(server.config.jwt, { sub: 'eve', workspaces: { acme: 'admin' } });
    const refused = await client(forged)
      .notifications.unreadCount.query({ workspaceId: 'acme' })
      .catch((e) => e);
    expect(refused).toBeInstanceOf(TRPCClientError);
    expect(refused.data.code).toBe('UNAUTHORIZED');
    expect(refused.message).toBe('Token algorithm not allowed');
  });
});
