import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';

/** Stream sequence numbers: `bigint` comes back as a string from PostgreSQL, a number from SQLite. */
type Seq = number | string;

/** The notifications domain's tables (SQLite and PostgreSQL alike). A type, not an interface: `withTables` wants an index signature. */
export type NotificationTables = {
  /** Every accepted notification, kept for `list` whatever the event retention. */
  pulse_notifications: {
    id: string;
    workspace_id: string;
    /** Id of the event that delivered it in the workspace stream. */
    seq: Seq;
    /** null = every member of the workspace. */
    user_id: string | null;
    type: string;
    title: string;
    body: string | null;
    /** JSON of the kind's payload. */
    data: string;
    priority: string;
    /**
     * Who sent it (`senderKeyOf`): idempotency keys are unique per (workspace, sender, key).
     * `''` for rows stored before migration `1000_notification_sender_keys` (sender unknown).
     */
    sender: string;
    idempotency_key: string | null;
    created_at: string;
    /**
     * 1 when the workspace default muted this kind at send time (a user's own choice then, if any,
     * is a `muted` value in their state row). Migration `1100_notification_states`.
     */
    muted_default: number;
  };
  /**
   * Per-user state of a notification (also for workspace-wide ones): seen / read / archived, each
   * with its time, and `muted` (null = the notification's `muted_default`; 1 muted, 0 delivered,
   * decided from the user's preferences at send time). A missing row = nothing happened yet.
   */
  pulse_notification_states: {
    notification_id: string;
    user_id: string;
    workspace_id: string;
    seen_at: string | null;
    read_at: string | null;
    archived_at: string | null;
    muted: number | null;
  };
  /** Preferences: one row per (workspace, user); user `''` holds the workspace defaults. */
  pulse_notification_preferences: {
    workspace_id: string;
    user_id: string;
    /** JSON: `UserPreferences` or `WorkspacePreferences`. */
    settings: string;
    /** Increases on every change (the stream applies only newer ones). */
    revision: number;
    updated_at: string;
  };
  /**
   * Outgoing webhook deliveries owed for notifications nobody saw in time (one per notification and
   * recipient, `*` = workspace-wide). Claimed with a conditional update, so one node sends each.
   */
  pulse_notification_webhooks: {
    notification_id: string;
    recipient: string;
    workspace_id: string;
    /** Epoch ms: not before this (created_at + the kind's delay, later the next retry). */
    due_at: number | string;
    attempts: number;
    /** The node holding the claim, and until when (epoch ms). */
    claimed_by: string | null;
    claimed_until: number | string | null;
    delivered_at: string | null;
    /** Seen in time, or given up after the last attempt. */
    cancelled_at: string | null;
    last_error: string | null;
  };
  /** Per-user read state (before migration 1100; copied into pulse_notification_states, no longer written). */
  pulse_notification_reads: {
    notification_id: string;
    user_id: string;
    workspace_id: string;
    read_at: string;
  };
  /**
   * The stream's event log: the last `retention` events per workspace, replayed on resume (written
   * and read by the stream kernel, `src/streams/`; ids and the publication watermark live in its
   * `pulse_streams`).
   */
  pulse_notification_events: {
    workspace_id: string;
    seq: Seq;
    /** null = everyone in the workspace; otherwise the only user who may see it. */
    recipient: string | null;
    /** JSON of the event exactly as published. */
    payload: string;
  };
};

const seedMigrations: Record<string, Migration> = {
  '0100_notifications': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('pulse_notifications')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('body', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('priority', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('pulse_notifications_ws_seq', ['workspace_id', 'seq'])
        // NOTE: NULL keys never conflict (both engines), so only keyed sends are deduplicated.
        .addUniqueConstraint('pulse_notifications_ws_key', ['workspace_id', 'idempotency_key'])
        .execute();
      await db.schema
        .createTable('pulse_notification_reads')
        .ifNotExists()
        .addColumn('notification_id', 'text', (c) =>
          c.notNull().references('pulse_notifications.id').onDelete('cascade'),
        )
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('read_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pulse_notification_reads_pk', ['notification_id', 'user_id'])
        .execute();
      await db.schema
        .createIndex('pulse_notification_reads_user')
        .ifNotExists()
        .on('pulse_notification_reads')
        .columns(['workspace_id', 'user_id'])
        .execute();
      await db.schema
        .createTable('pulse_notification_events')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('recipient', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pulse_notification_events_pk', ['workspace_id', 'seq'])
        .execute();
      await db.schema
        // NOTE: the old publication cursor; unused since the stream kernel keeps `published_seq` in
        // `pulse_streams` (left in place so this migration stays what it was).
        .createTable('pulse_notification_relay')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.primaryKey())
        .addColumn('published_seq', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '1000_notification_sender_keys': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
    async up(db: Kysely<any>) {
      // NOTE: idempotency keys were unique per workspace, shared by every sender (issue 12 item 9):
      // they become unique per (workspace, sender, key). Rows stored before get sender '' (unknown),
      // which no caller maps to, so a retry of such an old key by its sender creates a new one.
      if (isPostgres(db)) {
        await sql`alter table pulse_notifications add column if not exists sender text not null default ''`.execute(
          db,
        );
        await sql`alter table pulse_notifications drop constraint if exists pulse_notifications_ws_key`.execute(
          db,
        );
        await sql`create unique index if not exists pulse_notifications_sender_key
          on pulse_notifications (workspace_id, sender, idempotency_key)`.execute(db);
        return;
      }
      // SQLite cannot drop a table constraint: rebuild the table (the documented 12-step procedure).
      // The migrator runs SQLite migrations outside a transaction, so foreign keys can be switched
      // off here (dropping the old table must not cascade to the read rows that point at it).
      await sql`pragma foreign_keys = off`.execute(db);
      try {
        await sql`begin immediate`.execute(db);
        try {
          await sql`create table pulse_notifications_v2 (
            id text primary key,
            workspace_id text not null,
            seq bigint not null,
            user_id text,
            type text not null,
            title text not null,
            body text,
            data text not null,
            priority text not null,
            idempotency_key text,
            created_at text not null,
            sender text not null default '',
            constraint pulse_notifications_ws_seq unique (workspace_id, seq),
            constraint pulse_notifications_sender_key unique (workspace_id, sender, idempotency_key)
          )`.execute(db);
          await sql`insert into pulse_notifications_v2
              (id, workspace_id, seq, user_id, type, title, body, data, priority, idempotency_key, created_at, sender)
            select id, workspace_id, seq, user_id, type, title, body, data, priority, idempotency_key, created_at, ''
            from pulse_notifications`.execute(db);
          await sql`drop table pulse_notifications`.execute(db);
          await sql`alter table pulse_notifications_v2 rename to pulse_notifications`.execute(db);
          const broken = await sql`pragma foreign_key_check`.execute(db);
          if (broken.rows.length > 0)
            throw new Error('foreign key check failed after rebuilding pulse_notifications');
          await sql`commit`.execute(db);
        } catch (error) {
          await sql`rollback`.execute(db);
          throw error;
        }
      } finally {
        await sql`pragma foreign_keys = on`.execute(db);
      }
    },
  },
};

/** Seen / read / archived states, preferences and the webhook outbox (issue 17). */
export const notificationStateMigrations: Record<string, Migration> = {
  '1100_notification_states': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('pulse_notifications')
        .addColumn('muted_default', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('pulse_notification_states')
        .ifNotExists()
        .addColumn('notification_id', 'text', (c) =>
          c.notNull().references('pulse_notifications.id').onDelete('cascade'),
        )
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('seen_at', 'text')
        .addColumn('read_at', 'text')
        .addColumn('archived_at', 'text')
        .addColumn('muted', 'integer')
        .addPrimaryKeyConstraint('pulse_notification_states_pk', ['notification_id', 'user_id'])
        .execute();
      await db.schema
        .createIndex('pulse_notification_states_user')
        .ifNotExists()
        .on('pulse_notification_states')
        .columns(['workspace_id', 'user_id'])
        .execute();
      // NOTE: what was read before was seen too.
      await sql`insert into pulse_notification_states
          (notification_id, user_id, workspace_id, seen_at, read_at, archived_at, muted)
        select notification_id, user_id, workspace_id, read_at, read_at, null, null
        from pulse_notification_reads`.execute(db);
      await db.schema
        .createTable('pulse_notification_preferences')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pulse_notification_preferences_pk', ['workspace_id', 'user_id'])
        .execute();
      await db.schema
        .createTable('pulse_notification_webhooks')
        .ifNotExists()
        .addColumn('notification_id', 'text', (c) =>
          c.notNull().references('pulse_notifications.id').onDelete('cascade'),
        )
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('claimed_by', 'text')
        .addColumn('claimed_until', 'bigint')
        .addColumn('delivered_at', 'text')
        .addColumn('cancelled_at', 'text')
        .addColumn('last_error', 'text')
        .addPrimaryKeyConstraint('pulse_notification_webhooks_pk', ['notification_id', 'recipient'])
        .execute();
      // NOTE: the poller reads only open deliveries (partial index on both engines).
      await sql`create index if not exists pulse_notification_webhooks_due
        on pulse_notification_webhooks (due_at)
        where delivered_at is null and cancelled_at is null`.execute(db);
    },
  },
};

/** Migrations of the notifications domain, run at start-up next to `streamMigrations`. */
export const notificationMigrations: Record<string, Migration> = {
  ...seedMigrations,
  ...notificationStateMigrations,
};

// biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
function isPostgres(db: Kysely<any>): boolean {
  // NOTE: migrations get a bare Kysely (no Store): the dialect shows in its adapter.
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
