/**
 * Seeded, bounded fuzzing of the transport (issue 12): random request lines, headers and upgrade
 * targets over raw TCP, random WebSocket frames (valid and invalid JSON, random tRPC messages,
 * binary, oversized, fragmented, bad opcodes) over raw sockets, at a live Pulse node. After every
 * case the process must still answer `/healthz` and a fresh authenticated client must still query.
 *
 * CI runs a fixed seed and a small count; a release check runs longer:
 * `PULSE_FUZZ_RUNS=2000 PULSE_FUZZ_SEED=$RANDOM npx vitest run test/abuse/fuzz.test.ts`
 * (see docs/security.md, "Fuzzing the transport").
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, openRaw } from '../support/vitest.js';

const RUNS = Number(process.env.PULSE_FUZZ_RUNS ?? 100);
const SEED = Number(process.env.PULSE_FUZZ_SEED ?? 20_261_202);
const TIMEOUT_MS = Math.max(60_000, RUNS * 2_000);

let server: Awaited<ReturnType<typeof startTestServer>>;
let token: string;
/**
 * Exceptions that escaped a listener or timer. In production one ends the process; inside vitest the
 * process survives, so the property checks this list instead of the process's pulse.
 */
const escaped: unknown[] = [];
const onEscaped = (error: unknown) => {
  escaped.push(error);
};

beforeAll(async () => {
  process.on('uncaughtException', onEscaped);
  process.on('unhandledRejection', onEscaped);
  server = await startTestServer({ config: { limits: { authTimeoutMs: 200, maxPayloadBytes: 16 * 1024 } } });
  token = await server.token({ sub: 'fuzz', workspaces: { acme: 'member' } });
});
afterAll(async () => {
  process.off('uncaughtException', onEscaped);
  process.off('unhandledRejection', onEscaped);
  await server?.close({ graceMs: 0 });
});

/** The node is alive, `/healthz` answers, and a fresh authenticated socket can query. */
async function expectServing(): Promise<void> {
  expect(escaped).toEqual([]);
  const health = await fetch(`${server.url}/healthz`);
  expect(health.status).toBe(200);
  const raw = await openRaw(server.wsUrl, { params: { token } });
  try {
    raw.send({ id: 1, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'acme' } } });
    expect(await raw.next((m) => m.id === 1)).toMatchObject({ result: { type: 'data', data: [] } });
  } finally {
    await raw.close();
  }
}

/**
 * Half-closes `socket` after what was written and waits until the server has closed its side: TCP
 * delivers our FIN after every byte, so by then the server has read all of them and reacted to them
 * (a node that keeps a half-closed connection open fails the case). Then drops the socket.
 */
async function finish(socket: Socket): Promise<void> {
  if (!socket.destroyed) {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    socket.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('the node did not close a connection the client half-closed')),
        5_000,
      );
    });
    await Promise.race([closed, stuck]).finally(() => clearTimeout(timer));
  }
  socket.destroy();
}

/** Sends `bytes` on a fresh TCP connection, waits until the server has taken them all, then drops it. */
async function tcpCase(chunks: Buffer[]): Promise<void> {
  const socket = connect(server.port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('error', () => resolve());
    socket.once('close', () => resolve());
  });
  for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk);
  await finish(socket);
}

/** A masked client frame (RFC 6455 §5.2) with an arbitrary first byte (FIN, RSV bits, opcode). */
function frame(first: number, payload: Buffer, declared = payload.length): Buffer {
  const mask = randomBytes(4);
  const header =
    declared < 126
      ? Buffer.from([first, 0x80 | declared])
      : declared < 65_536
        ? Buffer.from([first, 0x80 | 126, declared >> 8, declared & 0xff])
        : Buffer.concat([Buffer.from([first, 0x80 | 127]), u64(declared)]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, masked]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}

const UPGRADE =
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/** Opens an authenticated WebSocket by hand and returns its TCP socket, ready for raw frames. */
async function handshaken(params: 'token' | 'none'): Promise<Socket> {
  const socket = connect(server.port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('data', (chunk) =>
      chunk.toString('latin1').startsWith('HTTP/1.1 101') ? resolve() : reject(),
    );
    socket.write(`GET /trpc?connectionParams=1 HTTP/1.1\r\nHost: localhost\r\n${UPGRADE}\r\n`);
  });
  if (params === 'token')
    socket.write(frame(0x81, Buffer.from(JSON.stringify({ method: 'connectionParams', data: { token } }))));
  return socket;
}

const targetArb = fc.oneof(
  fc.constantFrom('/trpc', '//[', 'http://[::1/trpc', '/trpc?connectionParams=1', '*', '/%', '/trpc#x', ''),
  fc.string({ maxLength: 40 }),
  fc.webUrl(),
);
const headerArb = fc.tuple(
  fc.stringMatching(/^[A-Za-z-]{1,20}$/),
  fc.string({ maxLength: 60 }).map((v) => v.replace(/[\r\n]/g, '')),
);
const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'OPTIONS', 'CONNECT', 'X', ''),
  target: targetArb,
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/9.9', ''),
  upgrade: fc.boolean(),
  headers: fc.array(headerArb, { maxLength: 6 }),
  garbage: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: undefined }),
});

const idArb = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 10 }),
  fc.constant(null),
  fc.object({ maxDepth: 1 }),
);
const pathArb = fc.constantFrom(
  'presence.list',
  'presence.onChange',
  'notifications.list',
  'notifications.onNotification',
  'nope',
  '__proto__',
  'constructor.name',
);
const trpcMessageArb = fc.record(
  {
    id: idArb,
    jsonrpc: fc.constantFrom('2.0', undefined, 1),
    method: fc.constantFrom(
      'query',
      'mutation',
      'subscription',
      'subscription.stop',
      'connectionParams',
      'x',
    ),
    params: fc.record(
      {
        path: pathArb,
        input: fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({ workspaceId: fc.constantFrom('acme', 'x') }),
        ),
        lastEventId: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const textArb = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  trpcMessageArb.map((m) => JSON.stringify(m)),
  fc.array(trpcMessageArb, { maxLength: 5 }).map((m) => JSON.stringify(m)),
  fc.constantFrom('PING', 'PONG', '[]', '{}', 'null', '"x"', '[[[[[[[[[['),
);
const frameArb = fc.oneof(
  // A well-formed text frame.
  textArb.map((text) => [frame(0x81, Buffer.from(text))]),
  // Binary.
  fc.uint8Array({ maxLength: 300 }).map((bytes) => [frame(0x82, Buffer.from(bytes))]),
  // An arbitrary first byte: RSV bits, reserved opcodes, control frames, no FIN.
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 130 }))
    .map(([first, bytes]) => [frame(first, Buffer.from(bytes))]),
  // Fragmented text, possibly with a control frame in between and a missing final fragment.
  fc
    .tuple(textArb, fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.boolean())
    .map(([text, parts, ping, finish]) => {
      const bytes = Buffer.from(text);
      const size = Math.ceil(bytes.length / parts) || 1;
      const out: Buffer[] = [];
      for (let i = 0, n = 0; i < bytes.length || n === 0; i += size, n++) {
        const last = i + size >= bytes.length;
        const opcode = n === 0 ? 0x1 : 0x0;
        out.push(frame((last && finish ? 0x80 : 0) | opcode, bytes.subarray(i, i + size)));
        if (ping) out.push(frame(0x89, Buffer.from('p')));
      }
      return out;
    }),
  // Oversized: declared length past maxPayload (only a little is actually sent).
  fc
    .integer({ min: 16 * 1024 + 1, max: 2 ** 40 })
    .map((declared) => [frame(0x81, Buffer.from('{"id":1'), declared)]),
  // A huge frame actually sent, just over the limit.
  fc.constant(null).map(() => [frame(0x81, Buffer.alloc(16 * 1024 + 10, 0x7b))]),
  // Raw bytes that are no frame at all.
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => [Buffer.from(bytes)]),
);

describe('fuzz: the transport survives whatever arrives', () => {
  it(
    `random HTTP request lines, headers and upgrade targets (seed ${SEED}, ${RUNS} runs)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(requestArb, async (req) => {
          const lines = [`${req.method} ${req.target} ${req.version}`.trim(), 'Host: localhost'];
          for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
          let head = `${lines.join('\r\n')}\r\n`;
          if (req.upgrade) head += UPGRADE;
          const chunks = [Buffer.from(`${head}\r\n`, 'latin1')];
          if (req.garbage) chunks.push(Buffer.from(req.garbage));
          await tcpCase(chunks);
          await expectServing();
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
    },
    TIMEOUT_MS,
  );

  it(
    `random WebSocket frames before and after authentication (seed ${SEED}, ${RUNS} runs)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<'token' | 'none'>('token', 'none'),
          fc.array(frameArb, { minLength: 1, maxLength: 4 }),
          async (params, frames) => {
            const socket = await handshaken(params);
            for (const chunks of frames)
              for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk);
            await finish(socket);
            await expectServing();
          },
        ),
        { seed: SEED + 1, numRuns: RUNS, endOnFailure: true },
      );
    },
    TIMEOUT_MS,
  );

  it('after the run, the node has released every socket it accepted', async () => {
    await expectServing();
    const { vi } = await import('vitest');
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(0), { timeout: 5_000 });
  });
});
