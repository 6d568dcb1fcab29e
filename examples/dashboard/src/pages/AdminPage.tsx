import { trpc } from '@pulse/react';
import type { NotificationSendInput, NotificationType } from '@pulse/server/schema';
import { type FormEvent, useState } from 'react';
import { Avatar } from '../components/Avatar.js';
import { Icon } from '../components/Icon.js';
import { useTeamPresence } from '../presence-context.js';
import { clock } from '../time.js';
import { useWorkspace } from '../workspace.js';

/** The kinds the form offers (the rest are sent by integrations: messages, posts). */
type SendKind = Extract<NotificationType, 'alert' | 'mention' | 'approval' | 'crisis' | 'review'>;

const kindLabels: Record<SendKind, string> = {
  alert: 'Alert',
  mention: 'Mention',
  approval: 'Approval request',
  crisis: 'Crisis alert',
  review: 'Review',
};

/** Builds a well-formed `notifications.send` input for the chosen kind from the form's few fields. */
function buildNotification(opts: {
  workspaceId: string;
  userId: string | undefined;
  kind: SendKind;
  title: string;
  body: string;
  sender: string;
}): NotificationSendInput {
  const common = {
    workspaceId: opts.workspaceId,
    userId: opts.userId,
    title: opts.title,
    body: opts.body || undefined,
  };
  switch (opts.kind) {
    case 'alert':
      return {
        ...common,
        type: 'alert',
        priority: 'high',
        data: { alertType: 'system', severity: 'warning', message: opts.body || opts.title },
      };
    case 'mention':
      return {
        ...common,
        type: 'mention',
        data: { platform: 'other', author: opts.sender, text: opts.body || opts.title },
      };
    case 'approval':
      return {
        ...common,
        type: 'approval',
        data: { postId: `post_${Date.now().toString(36)}`, requestedBy: opts.sender, status: 'pending' },
      };
    case 'crisis':
      return {
        ...common,
        type: 'crisis',
        priority: 'urgent',
        data: { severity: 'high', topic: opts.title, volume: 1200, sentiment: -0.7 },
      };
    case 'review':
      return {
        ...common,
        type: 'review',
        data: { platform: 'google', author: opts.sender, rating: 5, text: opts.body || undefined },
      };
  }
}

function SendNotification() {
  const { workspaceId, members, user } = useWorkspace();
  const [target, setTarget] = useState<string>('');
  const [kind, setKind] = useState<SendKind>('alert');
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [sent, setSent] = useState<Array<{ id: string; title: string; to: string; at: string }>>([]);
  const send = trpc.notifications.send.useMutation();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!title.trim()) return;
    const input = buildNotification({
      workspaceId,
      userId: target || undefined,
      kind,
      title: title.trim(),
      body: body.trim(),
      sender: user.name,
    });
    send.mutate(input, {
      onSuccess: ({ notification }) => {
        setSent((prev) => [
          {
            id: notification.id,
            title: notification.title,
            to: target || 'everyone',
            at: notification.createdAt,
          },
          ...prev.slice(0, 4),
        ]);
        setTitle('');
        setBody('');
      },
    });
  };

  return (
    <section className="panel">
      <div className="panel-head">
        <h2>Send a notification</h2>
        <span className="sub">to one member or the whole workspace</span>
      </div>
      <form
        className="panel-body"
        onSubmit={submit}
        style={{ display: 'flex', flexDirection: 'column', gap: 12 }}
      >
        <div className="form-row">
          <div className="field">
            <label htmlFor="n-target">Recipient</label>
            <select
              id="n-target"
              data-testid="notify-target"
              value={target}
              onChange={(e) => setTarget(e.target.value)}
            >
              <option value="">Everyone in {workspaceId}</option>
              {members.map((m) => (
                <option key={m.sub} value={m.sub}>
                  {m.name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="n-kind">Kind</label>
            <select
              id="n-kind"
              data-testid="notify-kind"
              value={kind}
              onChange={(e) => setKind(e.target.value as SendKind)}
            >
              {(Object.keys(kindLabels) as SendKind[]).map((k) => (
                <option key={k} value={k}>
                  {kindLabels[k]}
                </option>
              ))}
            </select>
          </div>
        </div>
        <div className="field">
          <label htmlFor="n-title">Title</label>
          <input
            id="n-title"
            data-testid="notify-title"
            value={title}
            maxLength={200}
            placeholder="e.g. Campaign goes live at 3 pm"
            onChange={(e) => setTitle(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="n-body">Message</label>
          <textarea
            id="n-body"
            data-testid="notify-body"
            value={body}
            maxLength={2000}
            placeholder="Optional details"
            onChange={(e) => setBody(e.target.value)}
          />
        </div>
        {send.error ? <div className="error-box">{send.error.message}</div> : null}
        <div style={{ display: 'flex', alignItems: 'center', gap: 12 }}>
          <button
            type="submit"
            className="btn primary"
            data-testid="notify-send"
            disabled={send.isPending || !title.trim()}
          >
            <Icon name="send" size={15} /> {send.isPending ? 'Sending…' : 'Send notification'}
          </button>
          {sent[0] ? (
            <span className="sent-ok" data-testid="notify-sent">
              <Icon name="check" size={14} /> Sent “{sent[0].title}” to {sent[0].to}
            </span>
          ) : null}
        </div>
      </form>
      {sent.length > 0 ? (
        <div className="feed">
          {sent.map((s) => (
            <div key={s.id} className="feed-item">
              <Icon name="bell" size={14} /> {s.title} <span className="chip">{s.to}</span>
              <time>{clock(s.at)}</time>
            </div>
          ))}
        </div>
      ) : null}
    </section>
  );
}

function LiveStats() {
  const { workspaceId } = useWorkspace();
  const { users } = useTeamPresence();
  // NOTE: only stats.workspace: stats.global shows every tenant's totals and is for operators
  // (an unscoped service token), never for a workspace admin.
  const workspace = trpc.stats.workspace.useQuery({ workspaceId }, { refetchInterval: 2_000 });
  const w = workspace.data;

  return (
    <section className="panel">
      <div className="panel-head">
        <h2>Live connections</h2>
        <span className="sub">refreshed every 2 s{w ? ` · ${clock(w.at)}` : ''}</span>
      </div>
      <div className="panel-body" style={{ display: 'flex', flexDirection: 'column', gap: 16 }}>
        {workspace.error ? <div className="error-box">{workspace.error.message}</div> : null}
        <div className="kv" data-testid="stats">
          <div>
            <span>Online in {workspaceId}</span>
            <strong data-testid="stats-online">{w?.onlineUsers ?? users.length}</strong>
          </div>
          <div>
            <span>Connections ({workspaceId})</span>
            <strong>{w?.connections ?? '–'}</strong>
          </div>
          <div>
            <span>Subscriptions ({workspaceId})</span>
            <strong>{w?.subscriptions ?? '–'}</strong>
          </div>
          <div>
            <span>Nodes</span>
            <strong>{w?.nodes.length ?? '–'}</strong>
          </div>
        </div>
        {w && w.nodes.length > 0 ? (
          <table className="table">
            <thead>
              <tr>
                <th>Node</th>
                <th>Connections</th>
                <th>Subscriptions</th>
              </tr>
            </thead>
            <tbody>
              {w.nodes.map((n) => (
                <tr key={n.nodeId}>
                  <td>
                    <code>{n.nodeId}</code>
                  </td>
                  <td>{n.connections}</td>
                  <td>{n.subscriptions}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <div>
          <div className="muted" style={{ fontSize: 12, fontWeight: 600, marginBottom: 8 }}>
            PRESENT NOW
          </div>
          <div className="avatar-stack">
            {users.map((u) => (
              <Avatar key={u.userId} id={u.userId} name={u.name} status={u.status} size={34} />
            ))}
          </div>
        </div>
      </div>
    </section>
  );
}

/** Admin-only: send notifications, watch connections and presence live. */
export function AdminPage() {
  return (
    <div className="grid two">
      <SendNotification />
      <LiveStats />
    </div>
  );
}
