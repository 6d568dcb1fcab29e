import { type Kysely, type Migration, sql } from 'kysely';
import { renameTables } from '../infra/store/rename.js';

/** The inbox's store tables. Times the SLA poller compares are epoch ms; the rest ISO-8601 text. */
export type InboxTables = {
  pulse_inbox_conversations: {
    id: string;
    workspace_id: string;
    platform: string;
    external_id: string;
    /** Contact as JSON. */
    contact: string;
    status: string;
    assignee_id: string | null;
    created_at: string;
    last_message_at: string;
    /** Epoch ms the oldest unanswered inbound message arrived; null when no clock runs. */
    sla_started_at: number | string | null;
    /** Epoch ms the running clock runs out. */
    sla_due_at: number | string | null;
    /** ISO time the running clock was escalated (the claim: set once, conditionally). */
    escalated_at: string | null;
    /** ISO time the escalation's alert was delivered; null while it is owed (retried by any node). */
    alerted_at: string | null;
  };
  pulse_inbox_messages: {
    id: string;
    workspace_id: string;
    conversation_id: string;
    /** Stream id of the event that delivered it. */
    seq: number | string;
    direction: string;
    author_id: string | null;
    author_name: string;
    body: string;
    at: string;
    platform_message_id: string | null;
    client_message_id: string | null;
  };
  pulse_inbox_reads: {
    conversation_id: string;
    user_id: string;
    /** Watermark: everything up to this message's stream id is read. */
    seq: number | string;
    message_id: string;
    read_at: string;
  };
  pulse_inbox_events: {
    workspace_id: string;
    seq: number | string;
    conversation_id: string | null;
    event: string;
  };
  pulse_inbox_settings: {
    workspace_id: string;
    sla_ms: number | string;
  };
  /**
   * Alerts owed by escalations (an outbox): written in the claim's transaction, deleted once the
   * alert was sent. Apart from the conversation, so a reply, a close or a new clock that resets the
   * conversation's SLA columns cannot drop an alert still owed.
   */
  pulse_inbox_sla_alerts: {
    /** The alert's idempotency key: `inbox-sla:<conversationId>:<slaStartedAt>`. */
    id: string;
    workspace_id: string;
    conversation_id: string;
    /** Who is alerted (the assignee at the claim), null: the workspace's admins. */
    user_id: string | null;
    sla_ms: number | string;
    /** The conversation as it was escalated (JSON); '' for alerts carried over by the migration. */
    conversation: string;
    /** Epoch ms of the claim (the retry clock). */
    escalated_at: number | string;
  };
};

export const inboxMigrations: Record<string, Migration> = {
  '0300_inbox': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('inbox_conversations')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('external_id', 'text', (c) => c.notNull())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('assignee_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_message_at', 'text', (c) => c.notNull())
        .addColumn('sla_started_at', 'bigint')
        .addColumn('sla_due_at', 'bigint')
        .addColumn('escalated_at', 'text')
        .addUniqueConstraint('inbox_conversations_external', ['workspace_id', 'platform', 'external_id'])
        .execute();
      await db.schema
        .createIndex('inbox_conversations_recent')
        .ifNotExists()
        .on('inbox_conversations')
        .columns(['workspace_id', 'last_message_at', 'id'])
        .execute();
      await db.schema
        .createIndex('inbox_conversations_sla')
        .ifNotExists()
        .on('inbox_conversations')
        .column('sla_due_at')
        .execute();
      await db.schema
        .createTable('inbox_messages')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('direction', 'text', (c) => c.notNull())
        .addColumn('author_id', 'text')
        .addColumn('author_name', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('platform_message_id', 'text')
        .addColumn('client_message_id', 'text')
        .addUniqueConstraint('inbox_messages_platform_id', ['conversation_id', 'platform_message_id'])
        .addUniqueConstraint('inbox_messages_client_id', [
          'conversation_id',
          'author_id',
          'client_message_id',
        ])
        .execute();
      await db.schema
        .createIndex('inbox_messages_order')
        .ifNotExists()
        .on('inbox_messages')
        .columns(['conversation_id', 'seq'])
        .execute();
      await db.schema
        .createTable('inbox_reads')
        .ifNotExists()
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('message_id', 'text', (c) => c.notNull())
        .addColumn('read_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('inbox_reads_pk', ['conversation_id', 'user_id'])
        .execute();
      await db.schema
        .createTable('inbox_events')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('conversation_id', 'text')
        .addColumn('event', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('inbox_events_pk', ['workspace_id', 'seq'])
        .execute();
      await db.schema
        .createTable('inbox_settings')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.primaryKey())
        .addColumn('sla_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0301_inbox_alerts': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('inbox_conversations').addColumn('alerted_at', 'text').execute();
    },
  },
  // NOTE: the one table prefix (issue 13): the inbox's tables get the `pulse_` every other table
  // has. The migrations above keep the names they created; every query uses the new ones, so all
  // nodes must run this version (docs/inbox.md).
  '1710_inbox_pulse_prefix': {
    async up(db) {
      await renameTables(
        db,
        ['inbox_conversations', 'inbox_messages', 'inbox_reads', 'inbox_events', 'inbox_settings'].map(
          (from) => ({ from, to: `pulse_${from}` }),
        ),
      );
    },
  },
  // NOTE: owed alerts move out of the conversation row (the chaos runner's 30-minute run found an
  // escalation whose alert was owed when a reply cleared the clock: never sent). Alerts owed at the
  // upgrade are carried over.
  '1800_inbox_sla_alerts': {
    async up(db) {
      await db.schema
        .createTable('pulse_inbox_sla_alerts')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('conversation_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('sla_ms', 'bigint', (c) => c.notNull())
        .addColumn('conversation', 'text', (c) => c.notNull())
        .addColumn('escalated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('pulse_inbox_sla_alerts_due')
        .ifNotExists()
        .on('pulse_inbox_sla_alerts')
        .column('escalated_at')
        .execute();
      await sql`
        insert into pulse_inbox_sla_alerts
          (id, workspace_id, conversation_id, user_id, sla_ms, conversation, escalated_at)
        select 'inbox-sla:' || id || ':' || cast(sla_started_at as text), workspace_id, id, assignee_id,
          sla_due_at - sla_started_at, '', 0
        from pulse_inbox_conversations
        where escalated_at is not null and alerted_at is null and sla_started_at is not null
          and sla_due_at is not null`.execute(db);
    },
  },
};
