import { describe, expect, it } from 'vitest';
import { connectWsOnly, startTestServer, waitFor } from '../test/support/vitest.js';

describe('server.publish', () => {
  it('sends every kind with default titles and priorities, validated, and reads presence', async () => {
    await using server = await startTestServer();
    const p = server.publish;
    const ws = 'acme';
    const results = [
      await p.sendMentionNotification({
        workspaceId: ws,
        data: { platform: 'x', author: '@fan', text: 'hi' },
      }),
      await p.sendMessageNotification({
        workspaceId: ws,
        userId: 'bob',
        data: { conversationId: 'c1', platform: 'facebook', from: 'Dana', preview: 'Hello' },
      }),
      await p.sendApprovalNotification({
        workspaceId: ws,
        data: { postId: 'p1', requestedBy: 'Alice', status: 'pending' },
      }),
      await p.sendCrisisAlert({ workspaceId: ws, data: { severity: 'high', topic: 'outage', volume: 900 } }),
      await p.sendPostPublishedNotification({
        workspaceId: ws,
        data: { postId: 'p2', platform: 'linkedin' },
      }),
      await p.sendPostFailedNotification({
        workspaceId: ws,
        data: { postId: 'p3', platform: 'tiktok', error: 'Token expired' },
      }),
      await p.sendReviewNotification({
        workspaceId: ws,
        priority: 'low',
        data: { platform: 'google', author: 'Sam', rating: 2 },
      }),
    ];
    expect(results.map((r) => [r.notification.type, r.notification.title, r.notification.priority])).toEqual([
      ['mention', '@fan mentioned you on x', 'normal'],
      ['message', 'New message from Dana on facebook', 'normal'],
      ['approval', 'Alice asks for approval of post p1', 'normal'],
      ['crisis', 'Crisis (high): outage', 'urgent'],
      ['post_published', 'Post p2 was published on linkedin', 'normal'],
      ['post_failed', 'Post p3 failed on tiktok', 'high'],
      ['review', 'New 2-star review from Sam on google', 'low'],
    ]);
    expect(results.map((r) => r.notification.userId)).toEqual([null, 'bob', null, null, null, null, null]);
    expect(results.map((r) => r.notification.eventId)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    await expect(
      p.sendNotification(ws, 'bob', { type: 'review', title: 'x', data: { platform: 'google' } as never }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });

    expect(await p.isUserOnline(ws, 'bob')).toBe(false);
    await using bob = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await bob.trpc.presence.set.mutate({ workspaceId: ws, status: 'online', page: '/inbox' });
    await waitFor(async () => expect(await p.isUserOnline(ws, 'bob')).toBe(true));
    expect(await p.getUserPresence(ws, 'bob')).toMatchObject({ userId: 'bob', page: '/inbox' });
    expect((await p.getWorkspacePresence(ws)).map((u) => u.userId)).toEqual(['bob']);
  });
});
