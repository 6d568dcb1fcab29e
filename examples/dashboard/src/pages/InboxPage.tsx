import { trpc, useConversation, useInbox } from '@pulse/react';
import type { ConversationStatus } from '@pulse/server/schema';
import { type KeyboardEvent, useEffect, useMemo, useRef, useState } from 'react';
import { Avatar } from '../components/Avatar.js';
import { Icon } from '../components/Icon.js';
import { useNow, useTeamPresence } from '../presence-context.js';
import { navigate } from '../router.js';
import { clock, countdown, timeAgo } from '../time.js';
import { useWorkspace } from '../workspace.js';

type InboxState = ReturnType<typeof useInbox>;
type ConversationItem = InboxState['conversations'][number];
type Filter = 'all' | ConversationStatus | 'mine';

function SlaBadge({ conversation, now }: { conversation: ConversationItem; now: number }) {
  if (conversation.escalatedAt)
    return (
      <span className="chip red" data-testid="sla-escalated">
        <Icon name="escalate" size={11} /> escalated
      </span>
    );
  if (!conversation.slaDueAt) return null;
  const remaining = Date.parse(conversation.slaDueAt) - now;
  return (
    <span
      className={`chip sla ${remaining < 60_000 ? 'red' : remaining < 5 * 60_000 ? 'amber' : ''}`}
      title="Time left to reply within the SLA"
    >
      <Icon name="clock" size={11} /> {countdown(remaining)}
    </span>
  );
}

const statusChip: Record<ConversationStatus, string> = { open: 'blue', pending: 'amber', closed: '' };

function ConversationList({
  conversations,
  activeId,
  now,
}: {
  conversations: ConversationItem[];
  activeId: string | null;
  now: number;
}) {
  const { user, members } = useWorkspace();
  const [filter, setFilter] = useState<Filter>('all');
  const shown = conversations.filter((c) =>
    filter === 'all' ? true : filter === 'mine' ? c.assigneeId === user.sub : c.status === filter,
  );
  return (
    <div className="inbox-list" data-testid="conversation-list">
      <div className="inbox-filter">
        {(['all', 'open', 'pending', 'closed', 'mine'] as const).map((f) => (
          <button
            key={f}
            type="button"
            className={`chip ${filter === f ? 'accent' : ''}`}
            onClick={() => setFilter(f)}
          >
            {f}
          </button>
        ))}
      </div>
      {shown.length === 0 ? <div className="empty">No conversations.</div> : null}
      {shown.map((c) => {
        const assignee = members.find((m) => m.sub === c.assigneeId);
        return (
          <div
            key={c.id}
            className={`conv ${c.id === activeId ? 'active' : ''} ${c.escalatedAt ? 'escalated' : ''}`}
            data-testid="conversation"
            data-conversation={c.id}
            onClick={() => navigate('inbox', c.id)}
            onKeyDown={(e) => e.key === 'Enter' && navigate('inbox', c.id)}
            role="button"
            tabIndex={0}
          >
            <Avatar id={c.contact.id} name={c.contact.name} size={38} />
            <div className="body">
              <div className="top">
                <strong>{c.contact.name}</strong>
                <time>{timeAgo(c.lastMessageAt, now)}</time>
              </div>
              <div className="preview">
                {c.platform} · {c.contact.handle ?? c.externalId}
              </div>
              <div className="tags">
                <span className={`chip ${statusChip[c.status]}`}>{c.status}</span>
                <SlaBadge conversation={c} now={now} />
                {assignee ? (
                  <span className="chip">→ {assignee.name.split(' ')[0]}</span>
                ) : (
                  <span className="chip">unassigned</span>
                )}
                {c.unreadCount > 0 ? <span className="chip accent">{c.unreadCount} new</span> : null}
              </div>
            </div>
          </div>
        );
      })}
    </div>
  );
}

function Thread({ conversation, now }: { conversation: ConversationItem; now: number }) {
  const { workspaceId, user, members } = useWorkspace();
  const presence = useTeamPresence();
  const thread = useConversation(workspaceId, conversation.id);
  const update = trpc.inbox.update.useMutation();
  const [draft, setDraft] = useState('');
  const bottom = useRef<HTMLDivElement>(null);
  const { messages, typing } = thread;
  const lastMessage = messages[messages.length - 1];

  // Teammates see what this user is doing: viewing the thread, or writing a reply to it.
  const composing = draft.trim().length > 0;
  const contactName = conversation.contact.name;
  useEffect(() => {
    presence.set({ activity: { kind: composing ? 'commenting' : 'viewing', target: contactName } });
  }, [presence.set, composing, contactName]);
  useEffect(() => () => presence.set({ activity: undefined }), [presence.set]);

  const count = messages.length + thread.pending.length;
  useEffect(() => {
    if (count > 0) bottom.current?.scrollIntoView({ block: 'end' });
  }, [count]);

  // Reading the thread moves the read watermark (read receipts for the others).
  const markRead = useRef(thread.markRead);
  markRead.current = thread.markRead;
  const lastId = lastMessage?.id;
  useEffect(() => {
    if (lastId && document.visibilityState === 'visible') markRead.current(lastId);
  }, [lastId]);

  const readers = useMemo(() => {
    // For each message id, who has read up to it (the newest message each reader reached).
    const positions = new Map(messages.map((m, i) => [m.id, i]));
    const result = new Map<string, string[]>();
    for (const [userId, upTo] of Object.entries(thread.readBy)) {
      if (userId === user.sub) continue;
      const at = positions.get(upTo);
      if (at === undefined) continue;
      const id = messages[at]!.id;
      result.set(id, [...(result.get(id) ?? []), userId]);
    }
    return result;
  }, [messages, thread.readBy, user.sub]);

  const send = () => {
    const body = draft.trim();
    if (!body) return;
    void thread.send(body);
    thread.setTyping(false);
    setDraft('');
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  };
  const nameOf = (userId: string) => members.find((m) => m.sub === userId)?.name ?? userId;

  return (
    <div className="thread" data-testid="thread" data-conversation={conversation.id}>
      <div className="thread-head">
        <Avatar id={conversation.contact.id} name={conversation.contact.name} size={40} />
        <div className="title">
          <strong>{conversation.contact.name}</strong>
          <span>
            {conversation.contact.handle ?? conversation.externalId} · via {conversation.platform}
          </span>
        </div>
        <SlaBadge conversation={conversation} now={now} />
        <select
          className="input"
          aria-label="Status"
          value={conversation.status}
          onChange={(e) =>
            update.mutate({ conversationId: conversation.id, status: e.target.value as ConversationStatus })
          }
        >
          <option value="open">Open</option>
          <option value="pending">Pending</option>
          <option value="closed">Closed</option>
        </select>
        <select
          className="input"
          aria-label="Assignee"
          data-testid="assignee"
          value={conversation.assigneeId ?? ''}
          onChange={(e) =>
            update.mutate({ conversationId: conversation.id, assigneeId: e.target.value || null })
          }
        >
          <option value="">Unassigned</option>
          {members.map((m) => (
            <option key={m.sub} value={m.sub}>
              {m.name}
            </option>
          ))}
        </select>
      </div>
      {conversation.escalatedAt ? (
        <div
          className="error-box"
          style={{ margin: '10px 18px 0', display: 'flex', gap: 8, alignItems: 'center' }}
        >
          <Icon name="alert" size={16} /> Escalated {timeAgo(conversation.escalatedAt, now)}: the customer
          waited past the SLA.
        </div>
      ) : null}
      {thread.error ? (
        <div className="error-box" style={{ margin: '10px 18px 0' }}>
          {thread.error.message}
        </div>
      ) : null}
      <div className="messages" data-testid="messages">
        {messages.map((m) => {
          const out = m.direction === 'outbound';
          const readBy = readers.get(m.id) ?? [];
          return (
            <div key={m.id} className={`msg ${out ? 'out' : ''}`} data-testid="message">
              <div className="bubble">{m.body}</div>
              <div className="meta">
                {out ? `${m.authorName} · ` : ''}
                {clock(m.at)}
                {readBy.length > 0 ? (
                  <span
                    className="read"
                    title={`Read by ${readBy.map(nameOf).join(', ')}`}
                    data-testid="read-receipt"
                  >
                    <Icon name="checks" size={12} /> Seen by{' '}
                    {readBy.map((id) => nameOf(id).split(' ')[0]).join(', ')}
                  </span>
                ) : null}
              </div>
            </div>
          );
        })}
        {thread.pending.map((p) => (
          <div key={p.clientMessageId} className="msg out pending" data-testid="message">
            <div className="bubble">{p.body}</div>
            <div className="meta">
              {p.status === 'failed' ? (
                <>
                  <span style={{ color: 'var(--red)' }}>Not sent{p.error ? `: ${p.error.message}` : ''}</span>
                  <button
                    type="button"
                    className="btn link small"
                    onClick={() => void thread.retry(p.clientMessageId)}
                  >
                    Retry
                  </button>
                </>
              ) : (
                'Sending…'
              )}
            </div>
          </div>
        ))}
        <div ref={bottom} />
      </div>
      <div className="typing-line" data-testid="typing-indicator">
        {typing.length > 0 ? (
          <>
            <span className="dots">
              <i />
              <i />
              <i />
            </span>
            {typing.map((t) => t.name).join(', ')} {typing.length === 1 ? 'is' : 'are'} typing…
          </>
        ) : null}
      </div>
      <div className="composer">
        <textarea
          data-testid="composer"
          placeholder={`Reply to ${conversation.contact.name}…  (Enter to send)`}
          value={draft}
          onChange={(e) => {
            setDraft(e.target.value);
            thread.setTyping(e.target.value.length > 0);
          }}
          onKeyDown={onKeyDown}
          onBlur={() => thread.setTyping(false)}
        />
        <button
          type="button"
          className="btn primary"
          data-testid="send-reply"
          onClick={send}
          disabled={!draft.trim()}
        >
          <Icon name="send" size={15} /> Send
        </button>
      </div>
    </div>
  );
}

/** Conversations with status, assignee and SLA countdown; the open thread with replies, typing, receipts. */
export function InboxPage({ conversationId }: { conversationId: string | null }) {
  const { workspaceId } = useWorkspace();
  const inbox = useInbox(workspaceId);
  const now = useNow(1_000);
  const conversations = inbox.conversations;
  const active = conversations.find((c) => c.id === conversationId) ?? null;
  const escalated = conversations.filter((c) => c.escalatedAt && c.status !== 'closed').length;

  return (
    <>
      {escalated > 0 ? (
        <div className="chip red" style={{ alignSelf: 'flex-start', padding: '5px 12px' }}>
          <Icon name="alert" size={13} /> {escalated} conversation{escalated === 1 ? '' : 's'} past the SLA
        </div>
      ) : null}
      {inbox.error ? <div className="error-box">{inbox.error.message}</div> : null}
      <section className="panel inbox">
        <ConversationList conversations={conversations} activeId={active?.id ?? null} now={now} />
        {active ? (
          <Thread key={active.id} conversation={active} now={now} />
        ) : (
          <div className="thread">
            <div className="empty" style={{ margin: 'auto' }}>
              <Icon name="inbox" size={28} />
              <p>Select a conversation</p>
            </div>
          </div>
        )}
      </section>
    </>
  );
}
