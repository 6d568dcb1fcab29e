import { mintToken } from '@pulse/server';
import { describe, expect, it } from 'vitest';
import { canShareConnection, freshestToken, subjectOfToken } from './tab-leader.js';
import { createPulseClient } from './index.js';

const jwt = {
  secret: 'tab-leader-test-secret-long-enough-for-hs256-0123',
  issuer: undefined,
  audience: undefined,
};
const tokenOf = (sub: string, expiresInSec: number) =>
  // biome-ignore lint/suspicious/noExplicitAny: only the secret matters for minting here
  mintToken(jwt as any, { sub, workspaces: { acme: 'member' }, expiresInSec });

describe('tab sharing helpers', () => {
  it('reads the user of a token without verifying it; null for anything that is not a JWT', async () => {
    expect(subjectOfToken(await tokenOf('bob', 60))).toBe('bob');
    expect(subjectOfToken('not-a-jwt')).toBeNull();
    expect(subjectOfToken('a.%%%.c')).toBeNull();
  });

  it('picks a fresher token of the same user another tab read, never one of another user', async () => {
    const bobOld = await tokenOf('bob', 60);
    const bobNew = await tokenOf('bob', 3_600);
    const carol = await tokenOf('carol', 7_200);
    expect(freshestToken(bobOld, bobNew, 'bob')).toBe(bobNew);
    expect(freshestToken(bobNew, bobOld, 'bob')).toBe(bobNew);
    expect(freshestToken(bobOld, carol, 'bob')).toBe(bobOld);
    expect(freshestToken(null, carol, 'bob')).toBeNull();
    expect(freshestToken(null, bobNew, 'bob')).toBe(bobNew);
    expect(freshestToken(bobOld, null, 'bob')).toBe(bobOld);
  });

  it('never shares in Node: no Web Locks, so a client is solo', async () => {
    expect(canShareConnection()).toBe(false);
    const client = createPulseClient({ url: 'http://127.0.0.1:9', token: 't', lazy: true });
    expect(client.getConnectionState().role).toBe('solo');
    expect(client.tabs).toBeNull();
    await client.close();
    expect(client.getConnectionState()).toMatchObject({ status: 'offline', role: 'solo' });
  });
});
