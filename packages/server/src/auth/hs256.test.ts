import { createHmac } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { type JWTPayload, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { claimsSchema } from './auth.schema.js';
import { createHs256FastPath, type Hs256Checks } from './hs256.js';
import { plainPrincipal } from './plain-claims.js';
import { createTokenVerifier, type MappedClaims, mintToken, type TokenVerifierOptions } from './token.js';

/**
 * Differential fuzz test of the HS256 fast path against jose (fixed seed, fixed clock): whatever
 * the fast path accepts, jose accepts with the same payload; and the verifier's answer (principal,
 * or TRPCError code + message) is the same with the fast path on and off.
 */

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const OTHER_SECRET = 'another-secret-that-is-long-enough-987654321';
const key = new TextEncoder().encode(SECRET);
/** The fixed clock: epoch seconds (the verifier tests run with Date at NOW s + 500 ms). */
const NOW = 1_900_000_000;
const ISS = 'https://issuer.test';
const AUD = 'pulse-test';

/** mulberry32: a small seeded PRNG, so every run fuzzes the same tokens. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  return { next, int, pick };
}

const b64u = (x: string | Uint8Array) => Buffer.from(x).toString('base64url');
const hmac = (input: string, secret: string, alg = 'sha256') =>
  createHmac(alg, secret).update(input).digest().toString('base64url');
/** A compact token from raw segments (header and payload as JSON text or bytes), HMAC-signed. */
function raw(header: string | Uint8Array, payload: string | Uint8Array, secret = SECRET): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${hmac(input, secret)}`;
}
const token = (header: object, payload: object, secret = SECRET) =>
  raw(JSON.stringify(header), JSON.stringify(payload), secret);

const BASE_HEADER = { alg: 'HS256', typ: 'JWT' };
const basePayload = (): Record<string, unknown> => ({
  sub: 'u1',
  name: 'User One',
  workspaces: { w1: 'member', w2: 'admin' },
  iat: NOW - 10,
  exp: NOW + 600,
  iss: ISS,
  aud: AUD,
});

/** Claim values the fuzzer draws from (`undefined` drops the claim). */
const VARIANTS: Record<string, readonly unknown[]> = {
  exp: [
    NOW + 600,
    NOW + 1,
    NOW,
    NOW - 1,
    NOW - 600,
    NOW + 0.5,
    NOW - 0.5,
    `${NOW + 600}`,
    null,
    undefined,
    true,
    [NOW + 600],
    { v: 1 },
  ],
  nbf: [undefined, NOW - 1, NOW, NOW + 1, NOW + 600, `${NOW}`, null, 0.5],
  iat: [NOW - 10, NOW, NOW + 1000, `${NOW}`, null, undefined, false],
  iss: [ISS, `${ISS}/`, 'other', undefined, [ISS], 5, null, ''],
  aud: [AUD, 'other', [AUD], ['other', AUD], ['other'], [AUD, 5], [], undefined, 5, null, { 0: AUD }],
  sub: ['u1', undefined, 7, '', 'has space', '__proto__', 'constructor', 'a'.repeat(129), null],
  name: ['User One', undefined, 5, 'x'.repeat(201), ''],
  workspaces: [{ w1: 'member' }, {}, undefined, { w1: 'owner' }, [], { __proto__: 'admin' }, 'w1'],
  role: [undefined, 'service', 'admin'],
};
const HEADERS: readonly unknown[] = [
  BASE_HEADER,
  { alg: 'HS256' },
  { typ: 'JWT', alg: 'HS256' },
  { alg: 'HS256', kid: 'k1' },
  { alg: 'HS256', kid: 5 },
  { alg: 'HS256', typ: 5 },
  { alg: 'HS256', typ: 'at+jwt' },
  { alg: 'HS256', crit: ['b64'], b64: false },
  { alg: 'HS256', crit: ['b64'], b64: true },
  { alg: 'HS256', b64: false },
  { alg: 'HS256', b64: true },
  { alg: 'HS256', crit: ['exp'] },
  { alg: 'HS256', crit: [] },
  { alg: 'HS256', jku: 'https://evil.test/keys' },
  { alg: 'HS256', jwk: { kty: 'oct', k: b64u(OTHER_SECRET) } },
  { alg: 'none' },
  { alg: 'HS384' },
  { alg: 'HS512' },
  { alg: 'RS256' },
  { alg: 'hs256' },
  { alg: ['HS256'] },
  {},
  ['HS256'],
  null,
  'HS256',
];

/** Ways to spoil a valid token's base64url (each keeps it decodable by a lenient decoder). */
const MANGLES: readonly ((t: string) => string)[] = [
  (t) => t.replace(/^([^.]*)/, '$1='),
  (t) => t.replace(/\.([^.]*)\./, '.$1=.'),
  (t) => `${t}=`,
  (t) => t.replace(/-/g, '+').replace(/_/g, '/'),
  (t) => `${t.slice(0, 3)} ${t.slice(3)}`,
  (t) => `${t}.`,
  (t) => `${t}.e30`,
  (t) => t.slice(0, t.lastIndexOf('.')),
  (t) => t.slice(0, -1),
  (t) => `${t}A`,
  (t) => `${t}AA`,
  (t) => `.${t}`,
  (t) => t.replace(/\./, '..'),
  (t) => `${t}\n`,
  (t) => t.toUpperCase(),
];

/** A base64url string that decodes to the same bytes but has non-zero unused trailing bits. */
function nonCanonical(segment: string): string | null {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const unused = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  if (unused === 0) return null;
  const last = alphabet.indexOf(segment.at(-1) as string);
  return segment.slice(0, -1) + alphabet[last | ((1 << unused) - 1)];
}

function corpus(): string[] {
  const r = rng(0x5eed_2121);
  const out: string[] = [];
  // Ordinary valid tokens are checked separately below; here, every claim varied at random.
  for (let i = 0; i < 2500; i++) {
    const payload = basePayload();
    for (const [claim, values] of Object.entries(VARIANTS)) {
      if (r.next() < 0.3) payload[claim] = r.pick(values);
    }
    for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
    const header = r.next() < 0.7 ? BASE_HEADER : r.pick(HEADERS);
    const secret = r.next() < 0.1 ? OTHER_SECRET : SECRET;
    let t = raw(JSON.stringify(header), JSON.stringify(payload), secret);
    if (r.next() < 0.1) t = r.pick(MANGLES)(t);
    out.push(t);
  }
  const valid = token(BASE_HEADER, basePayload());
  const [h, p, s] = valid.split('.') as [string, string, string];
  // Every signature position changed; every header/payload position changed (signature kept).
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < s.length; i++) {
    const c = alphabet[(alphabet.indexOf(s[i] as string) + 1 + (i % 63)) % 64] as string;
    out.push(`${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`);
  }
  for (let i = 0; i < h.length + p.length; i++) {
    const hp = `${h}.${p}`;
    if (hp[i] === '.') continue;
    const c = alphabet[(alphabet.indexOf(hp[i] as string) + 7) % 64] as string;
    out.push(`${hp.slice(0, i)}${c}${hp.slice(i + 1)}.${s}`);
  }
  // Non-canonical trailing bits (re-signed, so only the encoding is wrong), padding, other alphabets.
  const hn = nonCanonical(h);
  const pn = nonCanonical(p);
  for (const [hh, pp] of [
    [hn, p],
    [h, pn],
  ] as const) {
    if (!hh || !pp) continue;
    const input = `${hh}.${pp}`;
    out.push(`${input}.${hmac(input, SECRET)}`);
  }
  const sn = nonCanonical(s);
  if (sn) out.push(`${h}.${p}.${sn}`);
  for (const padded of [`${h}==`, `${h}=`]) {
    const input = `${padded}.${p}`;
    out.push(`${input}.${hmac(input, SECRET)}`);
  }
  {
    const payload = JSON.stringify({ ...basePayload(), name: '??>>??>>' });
    const input = `${b64u(JSON.stringify(BASE_HEADER))}.${Buffer.from(payload).toString('base64')}`;
    out.push(`${input}.${hmac(input, SECRET)}`);
  }
  // Payloads that are not a JSON object, not UTF-8, or odd JSON.
  const hj = JSON.stringify(BASE_HEADER);
  const pj = JSON.stringify(basePayload());
  for (const payload of [
    '[]',
    `[${pj}]`,
    'null',
    '"a string"',
    '123',
    'true',
    '',
    '{',
    pj.slice(0, -1),
    `${pj} `,
    ` ${pj}`,
    `\uFEFF${pj}`,
    `${pj}x`,
    pj.replace('"sub":"u1"', '"sub":"u1","sub":"u2"'),
    pj.replace('"sub":"u1"', '"sub":"u2","sub":"u1"'),
    pj.replace('"sub":"u1"', '"sub":"u1","__proto__":{"sub":"x"}'),
    pj.replace(`"exp":${NOW + 600}`, '"exp":1e999'),
    pj.replace(`"exp":${NOW + 600}`, `"exp":${NOW + 600}.0`),
    pj.replace(`"exp":${NOW + 600}`, '"exp":-0'),
    pj.replace(`"iat":${NOW - 10}`, '"iat":1e999'),
    pj.replace('"name":"User One"', '"name":"Us\\u0000er"'),
    pj.replace('"name":"User One"', '"name":"\\ud800"'),
    pj.replace('"name":"User One"', '"name":"José 🎉"'),
  ]) {
    out.push(raw(hj, payload));
  }
  const bad = Buffer.from(pj);
  bad[bad.indexOf('User')] = 0xff;
  out.push(raw(hj, bad));
  const overlong = Buffer.concat([
    Buffer.from(pj.slice(0, -1)),
    Buffer.from(',"n":"'),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from('"}'),
  ]);
  out.push(raw(hj, overlong));
  out.push(raw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(hj)]), pj));
  out.push(raw(`\uFEFF${hj}`, pj));
  out.push(raw(`${hj} `, pj));
  out.push(raw(hj.replace('"typ":"JWT"', '"typ":"JWT","alg":"none"'), pj));
  out.push(raw(hj.replace('"alg":"HS256"', '"alg":"none","alg":"HS256"'), pj));
  out.push(raw(hj.replace('"typ":"JWT"', '"typ":"JWT","__proto__":{}'), pj));
  out.push(raw('not json', pj));
  // Huge tokens: just below and above the verifier's 8 KB limit, and far above.
  for (const size of [7000, 8200, 20_000]) {
    out.push(token(BASE_HEADER, { ...basePayload(), name: 'n', pad: 'x'.repeat(size) }));
  }
  // Signatures of another length (HS384 / HS512 with the right secret) under alg HS256.
  for (const alg of ['sha384', 'sha512']) {
    const input = `${h}.${p}`;
    out.push(`${input}.${hmac(input, SECRET, alg)}`);
  }
  out.push(`${h}.${p}.`, `${h}.${p}`, `${h}..${s}`, `.${p}.${s}`, '', '..', 'a.b.c');
  return out;
}

/** Ordinary valid tokens: what clients send. The fast path must accept each (else it gives no speed). */
async function ordinary(): Promise<string[]> {
  const out = [
    token(BASE_HEADER, basePayload()),
    token({ alg: 'HS256' }, basePayload()),
    token({ alg: 'HS256', typ: 'JWT', kid: 'k1' }, basePayload()),
    token(BASE_HEADER, { ...basePayload(), aud: ['other', AUD] }),
    token(BASE_HEADER, { ...basePayload(), nbf: NOW }),
    token(BASE_HEADER, { ...basePayload(), exp: NOW + 1 }),
    token(BASE_HEADER, { ...basePayload(), role: 'service', workspaces: {} }),
    token(BASE_HEADER, { ...basePayload(), name: 'José 🎉' }),
  ];
  for (let i = 0; i < 20; i++) {
    out.push(
      await mintToken(
        { secret: SECRET, issuer: ISS, audience: AUD },
        {
          sub: `user-${i}`,
          workspaces: { w1: i % 2 ? 'admin' : 'member' },
          // Valid at the fixed clock, whatever the real one says.
          expiresInSec: NOW - Math.floor(Date.now() / 1000) + 3600,
        },
      ),
    );
  }
  return out;
}

const CHECKS: readonly Hs256Checks[] = [
  { requiredClaims: ['exp', 'sub'] },
  { requiredClaims: ['exp', 'sub'], issuer: ISS, audience: AUD },
  { requiredClaims: ['exp'], issuer: ISS, audience: AUD },
  { requiredClaims: ['exp', 'sub'], issuer: [ISS, 'other'], audience: ['x', AUD] },
  { requiredClaims: ['exp', 'sub'], issuer: 'other', audience: 'other' },
];

async function joseVerdict(t: string, checks: Hs256Checks): Promise<JWTPayload | null> {
  try {
    const { payload } = await jwtVerify(t, key, {
      requiredClaims: [...checks.requiredClaims],
      issuer: checks.issuer as string | string[] | undefined,
      audience: checks.audience as string | string[] | undefined,
      algorithms: ['HS256'],
      currentDate: new Date(NOW * 1000 + 500),
    });
    return payload;
  } catch {
    return null;
  }
}

describe('HS256 fast path (differential against jose, fixed seed and clock)', () => {
  const fast = createHs256FastPath(key);
  const tokens = corpus();

  it('accepts only tokens jose accepts, with a deep-equal payload', async () => {
    let accepted = 0;
    let refusedByBoth = 0;
    for (const checks of CHECKS) {
      for (const t of tokens) {
        const mine = fast(t, checks, NOW);
        const theirs = await joseVerdict(t, checks);
        if (mine !== undefined) {
          accepted++;
          if (theirs === null)
            throw new Error(`fast path accepted a token jose refuses: ${t} (${JSON.stringify(checks)})`);
          expect(mine).toStrictEqual(theirs);
        } else if (theirs === null) {
          refusedByBoth++;
        }
      }
    }
    // Both outcomes occur often, so the comparison is not vacuous.
    expect(tokens.length).toBeGreaterThan(2500);
    expect(accepted).toBeGreaterThan(1000);
    expect(refusedByBoth).toBeGreaterThan(5000);
  });

  it('accepts every ordinary valid token (the fast path is the path, not a rare case)', async () => {
    const checks: Hs256Checks = { requiredClaims: ['exp', 'sub'], issuer: ISS, audience: AUD };
    for (const t of await ordinary()) {
      const theirs = await joseVerdict(t, checks);
      expect(theirs).not.toBeNull();
      expect(fast(t, checks, NOW)).toStrictEqual(theirs);
    }
  });
});

describe('the verifier with the fast path on and off (fixed clock)', () => {
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW * 1000 + 500);
  });
  afterAll(() => {
    vi.useRealTimers();
  });

  type Verdict = { principal: unknown } | { code: string; message: string };
  async function verdict(verifier: ReturnType<typeof createTokenVerifier>, t: unknown): Promise<Verdict> {
    try {
      return { principal: await verifier.verify(t) };
    } catch (error) {
      expect(error).toBeInstanceOf(TRPCError);
      const e = error as TRPCError;
      return { code: e.code, message: e.message };
    }
  }
  const mapper = (payload: JWTPayload): MappedClaims => ({
    userId: String(payload.sub ?? ''),
    workspaces: typeof payload.org === 'string' ? { [payload.org]: 'member' } : {},
  });
  const setups: [string, Parameters<typeof createTokenVerifier>[0], TokenVerifierOptions][] = [
    ['secret only', { secret: SECRET }, {}],
    ['issuer + audience', { secret: SECRET, issuer: ISS, audience: AUD }, {}],
    ['a claims mapping', { secret: SECRET, issuer: ISS, audience: AUD }, { claims: mapper }],
  ];

  it.each(setups)('gives the same principal or the same error (%s)', async (_name, jwt, opts) => {
    const on = createTokenVerifier(jwt, { ...opts, cache: false });
    const off = createTokenVerifier(jwt, { ...opts, cache: false, hs256FastPath: false });
    const tokens = [...corpus(), ...(await ordinary()), undefined, 5, {}];
    const outcomes = new Map<string, number>();
    for (const t of tokens) {
      const a = await verdict(on, t);
      const b = await verdict(off, t);
      expect(a, `token ${String(t)}`).toStrictEqual(b);
      const key = 'principal' in a ? 'ok' : a.message;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    // Acceptances and a spread of distinct refusals were compared, not one outcome over and over.
    expect(outcomes.get('ok')).toBeGreaterThan(100);
    expect(outcomes.size).toBeGreaterThan(6);
  });

  it('still refuses the cases users meet, with their messages', async () => {
    const verifier = createTokenVerifier({ secret: SECRET, issuer: ISS, audience: AUD }, { cache: false });
    const cases: [string, string][] = [
      [token(BASE_HEADER, { ...basePayload(), exp: NOW }), 'Token expired'],
      [token(BASE_HEADER, { ...basePayload(), aud: 'other' }), 'Token claim "aud" does not match'],
      [token(BASE_HEADER, { ...basePayload(), iss: 'other' }), 'Token claim "iss" does not match'],
      [token(BASE_HEADER, { ...basePayload(), nbf: NOW + 1 }), 'Token claim "nbf" does not match'],
      [token(BASE_HEADER, basePayload(), OTHER_SECRET), 'Token signature invalid'],
      [token({ alg: 'HS384' }, basePayload()), 'Token algorithm not allowed'],
      [token(BASE_HEADER, { ...basePayload(), iat: `${NOW}` }), 'Token claim "iat" invalid (invalid)'],
    ];
    for (const [t, message] of cases) {
      expect(await verdict(verifier, t)).toStrictEqual({ code: 'UNAUTHORIZED', message });
    }
  });
});

describe('plain claims (differential against claimsSchema)', () => {
  /** The principal token.ts builds from the schema's output. */
  function schemaPrincipal(payload: unknown) {
    const parsed = claimsSchema.safeParse(payload);
    if (!parsed.success) return null;
    const c = parsed.data;
    return {
      userId: c.sub,
      name: c.name ?? c.sub,
      workspaces: Object.assign(Object.create(null), c.workspaces),
      service: c.role === 'service',
      expiresAt: c.exp * 1000,
    };
  }

  it('builds only principals the schema accepts, equal to the schema principal', () => {
    const payloads: unknown[] = [];
    for (const t of corpus()) {
      try {
        payloads.push(JSON.parse(Buffer.from(t.split('.')[1] ?? '', 'base64url').toString('utf8')));
      } catch {
        // not JSON: nothing to compare
      }
    }
    const id128 = 'a'.repeat(128);
    for (const text of [
      '{"sub":"u1","exp":1,"name":"' + 'n'.repeat(200) + '"}',
      '{"sub":"u1","exp":1,"name":"' + 'n'.repeat(201) + '"}',
      '{"sub":"u1","exp":1,"name":"' + '🎉'.repeat(100) + '"}',
      '{"sub":"u1","exp":1,"name":"' + '🎉'.repeat(101) + '"}',
      `{"sub":"${id128}","exp":1}`,
      `{"sub":"${id128}a","exp":1}`,
      `{"sub":"u1","exp":1,"workspaces":{"${id128}":"admin","${id128}b":"member"}}`,
      '{"sub":"u1","exp":1,"workspaces":{"__proto__":"admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"toString":"admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"prototype":"admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"12":"admin","3":"member","w":"admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"w 1":"admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"w1":"Admin"}}',
      '{"sub":"u1","exp":1,"workspaces":{"w1":null}}',
      '{"sub":"u1","exp":1,"workspaces":null}',
      '{"sub":"u1","exp":1,"workspaces":["w1"]}',
      '{"sub":"u1","exp":1,"role":"service","workspaces":{}}',
      '{"sub":"u1","exp":1,"role":"Service"}',
      '{"sub":"u1","exp":1,"role":null}',
      '{"sub":"u1","exp":1e999}',
      '{"sub":"u1","exp":-1e999}',
      '{"sub":"u1","exp":-0}',
      '{"sub":"u1","exp":1.5}',
      '{"sub":"u1","exp":"1"}',
      '{"sub":"u1"}',
      '{"sub":"hasOwnProperty","exp":1}',
      '{"sub":"a@b.c-d_e","exp":1}',
      '{"sub":"u1","exp":1,"name":null}',
      '{"sub":"u1","exp":1,"name":""}',
      '{"sub":"","exp":1,"name":"x"}',
    ]) {
      payloads.push(JSON.parse(text));
    }
    let plain = 0;
    let refusedByBoth = 0;
    for (const payload of payloads) {
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) continue;
      const mine = plainPrincipal(payload as Record<string, unknown>);
      const theirs = schemaPrincipal(payload);
      if (mine) {
        plain++;
        expect(theirs, JSON.stringify(payload)).not.toBeNull();
        expect(mine).toStrictEqual(theirs);
      } else if (!theirs) {
        refusedByBoth++;
      }
    }
    expect(plain).toBeGreaterThan(300);
    expect(refusedByBoth).toBeGreaterThan(300);
  });
});
