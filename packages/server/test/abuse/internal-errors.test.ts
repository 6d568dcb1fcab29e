import { Writable } from 'node:stream';
import { TRPCClientError } from '@trpc/client';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/infra/log.js';
import type { AppRouter } from '../../src/router.js';
import {
  connectWsOnly,
  startTestServer,
  createTestDatabase,
  postgresUnavailable,
} from '../support/vitest.js';

const skipReason = await postgresUnavailable();

const alert = {
  workspaceId: 'acme',
  userId: 'bob',
  type: 'alert',
  title: 'Quota',
  data: { alertType: 'quota', severity: 'info', message: 'at 80%' },
};

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', nodeId: 'pg', destination }) };
}

describe.skipIf(skipReason !== null)('abuse: internal errors on PostgreSQL', () => {
  it('refuses NUL characters anywhere in an input with BAD_REQUEST and a zod issue (tRPC, REST, WebSocket)', async () => {
    await using db = await createTestDatabase();
    const { lines, logger } = logSink();
    await using server = await startTestServer({ config: { databaseUrl: db.url }, logger });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    const viaTrpc = await fetch(`${server.url}/trpc/notifications.send`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...alert, title: 'Quota\u0000' }),
    });
    expect(viaTrpc.status).toBe(400);
    const trpcError = (await viaTrpc.json()).error;
    expect(trpcError.data).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: ['title'], message: 'must not contain NUL (\\u0000) characters', code: 'custom' }],
    });
    expect(JSON.stringify(trpcError)).not.toMatch(/invalid byte sequence|UTF8/);

    const viaRest = await fetch(`${server.url}/realtime/notifications/send`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...alert, data: { ...alert.data, message: 'x\u0000y' } }),
    });
    expect(viaRest.status).toBe(400);
    expect((await viaRest.json()).error).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: ['data', 'message'], message: 'must not contain NUL (\\u0000) characters' }],
    });

    await using ws = connectWsOnly(server.wsUrl, token);
    const error = await ws.trpc.dashboard.publish
      .mutate({
        workspaceId: 'acme',
        kind: 'post',
        platform: 'x',
        accountId: 'acc',
        postId: 'p1',
        status: 'draft',
        title: '\u0000',
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data).toMatchObject({
      code: 'BAD_REQUEST',
      issues: [{ path: ['title'] }],
    });
    // Nothing reached the store, and nothing was logged as a server fault.
    expect(await server.caller.notifications.list({ workspaceId: 'acme' })).toMatchObject({ items: [] });
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('masks a driver error as "Internal server error (ref …)" and logs the original with the same reference', async () => {
    await using db = await createTestDatabase();
    const { lines, logger } = logSink();
    await using server = await startTestServer({ config: { databaseUrl: db.url }, logger });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    // A real fault in the real store: the table the call needs is gone.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('drop table pulse_notifications cascade');
    await admin.end();

    const res = await fetch(
      `${server.url}/trpc/notifications.list?input=${encodeURIComponent(JSON.stringify({ workspaceId: 'acme' }))}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.error.data.code).toBe('INTERNAL_SERVER_ERROR');
    expect(body.error.message).toMatch(/^Internal server error \(ref [0-9a-f-]{36}\)$/);
    expect(JSON.stringify(body)).not.toMatch(/pulse_notifications|relation|does not exist/);
    const ref = /\(ref ([0-9a-f-]+)\)/.exec(body.error.message)?.[1];
    const logged = lines.find((l) => l.msg === 'procedure failed' && l.requestId === ref);
    expect(JSON.stringify(logged?.err)).toContain('pulse_notifications');

    await using ws = connectWsOnly(server.wsUrl, token);
    const error = (await ws.trpc.notifications.list
      .query({ workspaceId: 'acme' })
      .catch((e: unknown) => e)) as TRPCClientError<AppRouter>;
    expect(error.data?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.message).toMatch(/^Internal server error \(ref [0-9a-f-]+\)$/);
    expect(error.message).not.toContain('pulse_notifications');

    const rest = await fetch(`${server.url}/realtime/notifications/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(alert),
    });
    expect(rest.status).toBe(500);
    const restText = await rest.text();
    expect(JSON.parse(restText).error).toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'Internal server error',
    });
    expect(restText).not.toMatch(/pulse_notifications|relation/);
  });

  it('answers /readyz with generic text when the database is gone (the driver text goes to the log)', async () => {
    await using db = await createTestDatabase();
    const { lines, logger } = logSink();
    await using server = await startTestServer({ config: { databaseUrl: db.url }, logger });
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ ok: true });
    await db.drop();
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ ok: false, error: 'not ready: the store or the bus does not answer' });
    expect(text).not.toMatch(/database|terminating|pulse_test_/);
    const logged = lines.find((l) => l.msg === 'not ready');
    expect(logged?.level).toBe(40);
    expect(JSON.stringify(logged?.err)).toMatch(/database|terminating|connection/i);
  });
});
