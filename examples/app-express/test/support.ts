import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink } from '@trpc/client';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import WebSocket from 'ws';
import type { AppRouter } from '../src/app.js';

export const ISSUER = 'https://idp.example.test/';
export const AUDIENCE = 'pulse-example';

/** The app's identity provider: a JWKS endpoint on port 0 and an RS256 key that signs its tokens. */
export async function startIdentityProvider() {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = 'example-key-1';
  const keys: JWK[] = [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }];
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return {
    jwksUrl,
    /** A token as the provider issues it: `org_id` and `roles` claims. */
    token: (sub: string, org: string, roles: string[] = ['org:member']) =>
      new SignJWT({ org_id: org, roles, name: sub })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey),
    config: () => ({
      logLevel: 'silent' as const,
      jwt: { jwksUrl, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256' as const] },
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A typed client of the app's router: subscriptions over the WebSocket, the rest over HTTP. */
export function connectApp(
  urls: { url: string; wsUrl: string },
  token: string,
  opts: { onClose?: (cause?: { code?: number }) => void } = {},
) {
  const ws = createWSClient({
    url: urls.wsUrl,
    onClose: opts.onClose,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
    retryDelayMs: () => 50,
  });
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: ws }),
        false: httpBatchLink({ url: `${urls.url}/trpc`, headers: { authorization: `Bearer ${token}` } }),
      }),
    ],
  });
  return { trpc, ws, close: () => ws.close(), [Symbol.asyncDispose]: () => ws.close() };
}

/** What a subscription delivered (tracked `{ id, data }` items) and the errors it ended with. */
export function collect() {
  const items: Array<{ id: string; data: { type: string; data?: unknown } }> = [];
  const errors: unknown[] = [];
  return {
    items,
    errors,
    events: () => items.filter((item) => item.data.type === 'event'),
    synced: () => items.some((item) => item.data.type === 'sync'),
    onData: (item: unknown) => {
      items.push(item as (typeof items)[number]);
    },
    onError: (error: unknown) => {
      errors.push(error);
    },
  };
}
