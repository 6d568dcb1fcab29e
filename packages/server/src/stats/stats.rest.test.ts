import { describe, expect, it } from 'vitest';
import { connectWsOnly, startTestServer } from '../../test/support/vitest.js';

const alert = {
  workspaceId: 'acme',
  userId: 'bob',
  type: 'alert',
  title: 'Quota at 80%',
  data: { alertType: 'quota', severity: 'warning', message: 'Posts this month: 80 of 100' },
};

describe('REST parity', () => {
  it('serves presence, notifications and stats over REST with the same auth and validation as tRPC', async () => {
    await using server = await startTestServer({ config: { nodeId: 'node-rest' } });
    const admin = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const member = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const outsider = await server.token({ sub: 'eve', workspaces: { globex: 'admin' } });
    const service = await server.token({ sub: 'crm', service: true });
    await using bob = connectWsOnly(server.wsUrl, member);
    await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });

    const get = (path: string, token?: string) =>
      fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const post = (path: string, token: string, body: string | object) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    const list = await get('/realtime/presence/workspace/acme', admin);
    expect(list.status).toBe(200);
    expect(list.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await list.json()).toEqual([
      expect.objectContaining({ userId: 'bob', name: 'Bob', page: '/inbox' }),
    ]);
    const one = await get('/realtime/presence/user/bob/workspace/acme', member);
    expect(await one.json()).toMatchObject({ userId: 'bob', status: 'online' });
    expect(await (await get('/realtime/presence/user/nobody/workspace/acme', member)).json()).toBeNull();

    const forbidden = await get('/realtime/presence/workspace/acme', outsider);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({
      error: { code: 'FORBIDDEN', message: 'Not a member of workspace "acme"' },
    });
    const invalid = await get('/realtime/presence/workspace/a%20b', admin);
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({
      error: { code: 'BAD_REQUEST', issues: [expect.objectContaining({ path: ['workspaceId'] })] },
    });

    // notifications.send: admin or service; the body is validated by the notification schema.
    const sent = await post('/realtime/notifications/send', admin, alert);
    expect(sent.status).toBe(200);
    expect(await sent.json()).toMatchObject({
      notification: expect.objectContaining({ title: 'Quota at 80%' }),
    });
    expect((await post('/realtime/notifications/send', service, alert)).status).toBe(200);
    const byMember = await post('/realtime/notifications/send', member, alert);
    expect(byMember.status).toBe(403);
    expect((await byMember.json()).error.code).toBe('FORBIDDEN');
    const badBody = await post('/realtime/notifications/send', admin, { ...alert, type: 'mention' });
    expect(badBody.status).toBe(400);
    expect((await badBody.json()).error).toMatchObject({ code: 'BAD_REQUEST', issues: expect.any(Array) });
    const notJson = await post('/realtime/notifications/send', admin, '{"workspaceId":');
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error.code).toBe('PARSE_ERROR');
    const tooBig = await post('/realtime/notifications/send', admin, {
      ...alert,
      pad: 'x'.repeat(70 * 1024),
    });
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    const wrongMethod = await get('/realtime/notifications/send', admin);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    const anonymous = await get('/realtime/stats/workspace/acme');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');

    // Global stats span every tenant: operators (an unscoped service) only, never a workspace admin.
    const byAdmin = await get('/realtime/stats', admin);
    expect(byAdmin.status).toBe(403);
    expect((await byAdmin.json()).error.code).toBe('FORBIDDEN');
    const scoped = await server.token({ sub: 'crm-acme', service: true, workspaces: { acme: 'admin' } });
    expect((await get('/realtime/stats', scoped)).status).toBe(403);
    const stats = await get('/realtime/stats', service);
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({
      nodes: [expect.objectContaining({ nodeId: 'node-rest', connections: 1 })],
      totals: { connections: 1, onlineUsers: 1 },
    });
    expect((await get('/realtime/stats', member)).status).toBe(403);
    const ws = await get('/realtime/stats/workspace/acme', member);
    expect(await ws.json()).toMatchObject({ workspaceId: 'acme', connections: 1, onlineUsers: 1 });
    expect((await get('/realtime/stats/workspace/acme', outsider)).status).toBe(403);
  });

  it('REST mutations share the rate limits (429 TOO_MANY_REQUESTS)', async () => {
    await using server = await startTestServer({
      config: { limits: { rateLimitPerSec: 2, rateLimitBurst: 3 } },
    });
    const admin = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${server.url}/realtime/notifications/send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(alert),
      });
      statuses.push(res.status);
      if (res.status === 429) expect((await res.json()).error.code).toBe('TOO_MANY_REQUESTS');
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses).toContain(429);
  });

  it('GET /openapi.json is an OpenAPI 3.1 document generated from the zod schemas', async () => {
    await using server = await startTestServer();
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/realtime/presence/workspace/{workspaceId}',
        '/realtime/presence/user/{userId}/workspace/{workspaceId}',
        '/realtime/notifications/send',
        '/realtime/stats',
        '/realtime/stats/workspace/{workspaceId}',
        '/healthz',
        '/readyz',
        '/metrics',
      ]),
    );
    const list = doc.paths['/realtime/presence/workspace/{workspaceId}'].get;
    expect(list.parameters[0]).toMatchObject({
      name: 'workspaceId',
      in: 'path',
      required: true,
      schema: { type: 'string', maxLength: 128, pattern: expect.any(String) },
    });
    expect(list.responses['200'].content['application/json'].schema).toMatchObject({
      type: 'array',
      items: { type: 'object', required: expect.arrayContaining(['userId', 'status']) },
    });
    expect(list.responses['403'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
    const send = doc.paths['/realtime/notifications/send'].post;
    const body = JSON.stringify(send.requestBody.content['application/json'].schema);
    for (const type of [
      'mention',
      'message',
      'approval',
      'alert',
      'post_published',
      'post_failed',
      'crisis',
      'review',
    ])
      expect(body).toContain(`"${type}"`);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
  });
});
