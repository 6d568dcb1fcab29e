import { describe, expect, it } from 'vitest';
import {
  startTestServer,
  expectDrained,
  expectHealthy,
  openRaw,
  type WireMessage,
  wireCode,
} from '../support/vitest.js';

const list = (id: unknown, input: unknown = { workspaceId: 'acme' }) =>
  JSON.stringify({ id, method: 'query', params: { path: 'presence.list', input } });
const sub = (id: unknown, path = 'presence.onChange', input: unknown = { workspaceId: 'acme' }) =>
  JSON.stringify({ id, method: 'subscription', params: { path, input } });

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

type Expectation =
  /** An error frame with this id and tRPC code; the socket stays open. */
  | { id: string | number | null; code: string }
  /** A data frame for this id; the socket stays open. */
  | { id: string | number; data: true }
  /** The socket is closed with this code. */
  | { close: number };

interface FrameCase {
  name: string;
  frames: Array<string | Buffer>;
  expect: Expectation[];
  /** Send connectionParams first (default true). */
  auth?: boolean;
}

const LIMIT = 64 * 1024;

const cases: FrameCase[] = [
  {
    name: 'truncated JSON',
    frames: ['{"id":1,"method":"query","params":{"path":"presence.li'],
    expect: [{ id: null, code: 'PARSE_ERROR' }],
  },
  { name: 'a binary frame', frames: [Buffer.from(list(1))], expect: [{ id: null, code: 'PARSE_ERROR' }] },
  { name: 'a null id', frames: [list(null)], expect: [{ id: null, code: 'PARSE_ERROR' }] },
  {
    name: 'a missing id',
    frames: [
      JSON.stringify({ method: 'query', params: { path: 'presence.list', input: { workspaceId: 'acme' } } }),
    ],
    expect: [{ id: null, code: 'PARSE_ERROR' }],
  },
  { name: 'an object as id', frames: [list({ evil: true })], expect: [{ id: null, code: 'PARSE_ERROR' }] },
  {
    name: 'duplicate subscription ids in one frame',
    frames: [`[${sub(7)},${sub(7)}]`],
    expect: [
      { id: 7, code: 'BAD_REQUEST' },
      { id: 7, data: true },
    ],
  },
  {
    name: 'a duplicate id across frames',
    frames: [sub('s'), sub('s')],
    expect: [
      { id: 's', code: 'BAD_REQUEST' },
      { id: 's', data: true },
    ],
  },
  {
    name: '20k levels of nested arrays',
    frames: ['['.repeat(20_000) + ']'.repeat(20_000)],
    expect: [{ id: null, code: 'PARSE_ERROR' }],
  },
  {
    name: 'a deeply nested input',
    frames: [list(1, { workspaceId: 'acme', deep: nested(2_000) })],
    expect: [{ id: 1, data: true }],
  },
  {
    name: 'a deeply nested wrong input',
    frames: [list(1, nested(2_000))],
    expect: [{ id: 1, code: 'BAD_REQUEST' }],
  },
  {
    name: '__proto__ and constructor keys',
    frames: [
      '{"id":1,"method":"query","params":{"path":"presence.list","input":{"workspaceId":"acme","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}}',
    ],
    expect: [{ id: 1, data: true }],
  },
  {
    name: 'a huge array in the input',
    frames: [
      JSON.stringify({
        id: 1,
        method: 'mutation',
        params: {
          path: 'notifications.markRead',
          input: { workspaceId: 'acme', ids: Array.from({ length: 5_000 }, (_, i) => String(i)) },
        },
      }),
    ],
    expect: [{ id: 1, code: 'BAD_REQUEST' }],
  },
  {
    name: 'an oversize frame',
    frames: [list(1, { workspaceId: 'acme', pad: 'x'.repeat(LIMIT) })],
    expect: [{ close: 1009 }],
  },
  {
    name: 'an unknown method',
    frames: [JSON.stringify({ id: 1, method: 'explode', params: { path: 'presence.list' } })],
    expect: [{ id: 1, code: 'PARSE_ERROR' }],
  },
  {
    name: 'an unknown path',
    frames: [JSON.stringify({ id: 1, method: 'query', params: { path: 'admin.dropAll', input: {} } })],
    expect: [{ id: 1, code: 'NOT_FOUND' }],
  },
  {
    name: 'a prototype path',
    frames: [
      JSON.stringify({ id: 1, method: 'query', params: { path: '__proto__.constructor', input: {} } }),
    ],
    expect: [{ id: 1, code: 'NOT_FOUND' }],
  },
  {
    name: 'wrong input types',
    frames: [list(1, { workspaceId: 42 })],
    expect: [{ id: 1, code: 'BAD_REQUEST' }],
  },
  {
    name: 'an id-shaped injection',
    frames: [list(1, { workspaceId: 'acme:*' })],
    expect: [{ id: 1, code: 'BAD_REQUEST' }],
  },
  {
    name: 'a query sent as a subscription',
    frames: [sub(1, 'presence.list')],
    expect: [{ id: 1, code: 'NOT_FOUND' }],
  },
  {
    name: 'a lastEventId of the wrong type',
    frames: [
      JSON.stringify({
        id: 1,
        method: 'subscription',
        params: {
          path: 'notifications.onNotification',
          input: { workspaceId: 'acme' },
          lastEventId: { $gt: '' },
        },
      }),
    ],
    expect: [{ id: 1, code: 'PARSE_ERROR' }],
  },
  {
    name: 'a batch over the limit',
    frames: [`[${Array.from({ length: 129 }, (_, i) => list(i)).join(',')}]`],
    expect: [{ id: null, code: 'PAYLOAD_TOO_LARGE' }],
  },
  { name: 'an empty batch', frames: ['[]'], expect: [{ id: null, code: 'BAD_REQUEST' }] },
  { name: 'a bare number', frames: ['42'], expect: [{ id: null, code: 'PARSE_ERROR' }] },
  {
    name: 'a second connectionParams',
    frames: [JSON.stringify({ method: 'connectionParams', data: { token: 'x' } })],
    expect: [{ id: null, code: 'PARSE_ERROR' }],
  },
  {
    name: 'a stop for an unknown subscription',
    frames: [JSON.stringify({ id: 99, method: 'subscription.stop' }), list(2)],
    expect: [{ id: 2, data: true }],
  },
  // As the stock adapter: a first frame that is not connectionParams is PARSE_ERROR and a plain close
  // (1005), not 4401, which would tell the client to refresh a token that may be fine.
  {
    name: 'a request before connectionParams',
    auth: false,
    frames: [list(1)],
    expect: [{ id: null, code: 'PARSE_ERROR' }, { close: 1005 }],
  },
  {
    name: 'garbage before connectionParams',
    auth: false,
    frames: ['hello'],
    expect: [{ id: null, code: 'PARSE_ERROR' }, { close: 1005 }],
  },
];

describe('abuse: malformed frames', () => {
  it('covers at least 15 cases', () => expect(cases.length).toBeGreaterThanOrEqual(15));

  it.each(cases)('$name gets the exact error, and the node keeps serving', async (c) => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, c.auth === false ? { params: false } : { params: { token } });
    for (const frame of c.frames) raw.send(frame);
    let closes = false;
    for (const e of c.expect) {
      if ('close' in e) {
        closes = true;
        expect((await raw.closed).code).toBe(e.close);
      } else if ('code' in e) {
        const error = await raw.next((m: WireMessage) => m.error !== undefined && m.id === e.id);
        expect(wireCode(error)).toBe(e.code);
      } else {
        await raw.next((m: WireMessage) => m.id === e.id && m.result?.type === 'data');
      }
    }
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    if (!closes) {
      // The same socket still answers a valid request.
      raw.send(list('after'));
      expect(await raw.next((m) => m.id === 'after')).toMatchObject({ result: { type: 'data', data: [] } });
      await raw.close();
    }
    await expectHealthy(server);
    await expectDrained(server);
  });
});
