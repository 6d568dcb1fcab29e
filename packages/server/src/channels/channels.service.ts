import type { TrackedEnvelope } from '@trpc/server';
import { TRPCError } from '@trpc/server';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { assertAccess } from '../auth/access.js';
import { idSchema, type Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import { type LiveStream, liveEphemeral } from '../infra/live.js';
import type { Store } from '../infra/store/db.js';
import type { DurableStream } from '../streams/durable-stream.js';
import type { StreamKernel } from '../streams/stream-kernel.js';
import { streamEventIdSchema } from '../streams/stream.schema.js';
import {
  type AnyChannel,
  type ChannelEvent,
  type ChannelEventOf,
  type ChannelInputOf,
  type ChannelMessage,
  type ChannelPublishResult,
  channelKey,
} from './channel.js';
import type { ChannelTables } from './channels.tables.js';

/** Who publishes: a verified caller (workspace and `authorize` checks apply) or trusted server code. */
export type ChannelSender = Principal | 'system';

/** What a publish names: the workspace, the topic's key, the event (and, durable only, an idempotency key). */
export interface ChannelPublishInput<C extends AnyChannel> {
  workspaceId: string;
  input: ChannelInputOf<C>;
  event: ChannelEventOf<C>;
  /** Durable channels: a retry with the same key (same sender) publishes once and returns the first id. */
  idempotencyKey?: string;
}

/** What a subscriber of a channel receives: tracked messages (durable) or plain events (ephemeral). */
export type ChannelSubscription<C extends AnyChannel> = C['durable'] extends true
  ? LiveStream<TrackedEnvelope<ChannelMessage<ChannelEventOf<C>, ChannelInputOf<C>>>>
  : LiveStream<ChannelEvent<ChannelEventOf<C>, ChannelInputOf<C>>>;

/** A stored channel event (its `key` is the recipient the replay filters on). */
type StoredEvent = ChannelEvent<unknown, unknown>;

interface Entry {
  channel: AnyChannel;
  stream: DurableStream<StoredEvent> | null;
}

export interface ChannelServiceOptions {
  store: Store;
  hub: Hub;
  /** The node's durable-stream kernel: durable channels are streams on it. */
  streams: StreamKernel;
  channels?: readonly AnyChannel[];
}

/** Largest topic key (the input's JSON): it is stored beside every event. */
const MAX_KEY_LENGTH = 512;

class DuplicateKey extends Error {}

/**
 * The app's channels on one node: durable ones are streams of the durable-stream kernel (stored,
 * gap-free ids per workspace, replay, relay, retention), ephemeral ones go through the hub only.
 * One stream per channel and workspace (`channel.<name>:<workspaceId>`); each event carries its
 * topic key, so subscribers of one post never see another's (filtered in SQL on replay, by the
 * hub sink's filter live: the WebSocket fast path).
 */
export class ChannelService {
  private readonly entries = new Map<string, Entry>();
  private readonly db: Kysely<ChannelTables>;

  constructor(private readonly opts: ChannelServiceOptions) {
    this.db = opts.store.db.withTables<ChannelTables>();
    for (const channel of opts.channels ?? []) this.register(channel);
  }

  /** Registers a channel (at construction: the relay of every node must know its stream). */
  register(channel: AnyChannel): void {
    const known = this.entries.get(channel.name);
    if (known) {
      if (known.channel === channel) return;
      throw new Error(`Two different channels are named "${channel.name}"`);
    }
    const stream = channel.durable
      ? this.opts.streams.define<StoredEvent>({
          name: channel.streamName,
          retention: channel.retention,
          recipientOf: (event) => (event.type === 'event' ? event.key : null),
        })
      : null;
    this.entries.set(channel.name, { channel, stream });
  }

  /** The registered channels. */
  list(): AnyChannel[] {
    return [...this.entries.values()].map((entry) => entry.channel);
  }

  /**
   * Publishes one event: validates it (BAD_REQUEST with the zod path), checks a caller (member of
   * the workspace, then `authorize`), then on a durable channel stores it and publishes it once
   * committed; on an ephemeral channel hands it to the hub. Resolves with the event's id.
   */
  async publish<C extends AnyChannel>(
    sender: ChannelSender,
    channel: C,
    raw: ChannelPublishInput<C>,
  ): Promise<ChannelPublishResult> {
    const { stream } = this.entry(channel);
    const parsed = parseOrThrow(publishSchema(channel), raw);
    const { workspaceId, input, event, idempotencyKey } = parsed;
    if (sender !== 'system') await this.authorize(sender, channel, workspaceId, input, 'publish');
    const key = keyOf(input);
    const message: StoredEvent = {
      type: 'event',
      workspaceId,
      at: new Date().toISOString(),
      input,
      key,
      from: sender === 'system' ? 'system' : sender.userId,
      data: event,
    };
    if (!stream) {
      if (idempotencyKey !== undefined) {
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: `Channel ${channel.name} is ephemeral: idempotencyKey needs a durable channel`,
        });
      }
      const json = JSON.stringify(message);
      await this.opts.hub.publish(`${channel.streamName}:${workspaceId}`, message, undefined, json);
      return { id: null, created: true };
    }
    const senderKey =
      sender === 'system' ? 'system' : `${sender.service ? 'service' : 'user'}:${sender.userId}`;
    const streamKey = stream.topic(workspaceId);
    if (idempotencyKey !== undefined) {
      const existing = await this.findKey(streamKey, senderKey, idempotencyKey);
      if (existing) return existing;
    }
    try {
      return await this.opts.streams.transaction(this.db, async (trx) => {
        const seq = await stream.nextId(trx, workspaceId);
        if (idempotencyKey !== undefined) {
          const inserted = await trx
            .insertInto('pulse_channel_publishes')
            .values({ stream_key: streamKey, sender: senderKey, idempotency_key: idempotencyKey, seq })
            .onConflict((oc) => oc.columns(['stream_key', 'sender', 'idempotency_key']).doNothing())
            .returning('seq')
            .executeTakeFirst();
          if (!inserted) throw new DuplicateKey();
          // NOTE: keys live as long as their events: older ones fall out with the retention window.
          const floor = seq - channel.retention;
          if (floor > 0) {
            await trx
              .deleteFrom('pulse_channel_publishes')
              .where('stream_key', '=', streamKey)
              .where('seq', '<=', floor)
              .execute();
          }
        }
        await stream.append(trx, workspaceId, message, { seq, recipient: key });
        return { id: String(seq), created: true };
      });
    } catch (error) {
      if (error instanceof DuplicateKey && idempotencyKey !== undefined) {
        const existing = await this.findKey(streamKey, senderKey, idempotencyKey);
        if (existing) return existing;
      }
      if (error instanceof TRPCError) throw error;
      throw new TRPCError({
        code: 'INTERNAL_SERVER_ERROR',
        message: 'Could not store the event',
        cause: error,
      });
    }
  }

  /**
   * A subscriber's stream of one topic, after the workspace and `authorize` checks. Durable: a
   * `sync` at the head first (or, with `lastEventId`, every missed event of this topic in order, or
   * a `reset` past the retention window), then live events, each `tracked(id, message)`.
   * Ephemeral: live events only.
   */
  async subscribe<C extends AnyChannel>(
    principal: Principal,
    channel: C,
    raw: { workspaceId: string; input: ChannelInputOf<C>; lastEventId?: string | null; signal?: AbortSignal },
  ): Promise<ChannelSubscription<C>> {
    const { stream } = this.entry(channel);
    const { workspaceId, input, lastEventId } = parseOrThrow(subscribeSchema(channel), {
      workspaceId: raw.workspaceId,
      input: raw.input,
      lastEventId: raw.lastEventId,
    });
    await this.authorize(principal, channel, workspaceId, input, 'subscribe');
    const key = keyOf(input);
    if (stream) {
      return stream.subscribe({
        workspaceId,
        lastEventId,
        filter: { recipient: key },
        signal: raw.signal,
      }) as unknown as ChannelSubscription<C>;
    }
    const coalesce = channel.coalesce;
    return liveEphemeral<StoredEvent>(this.opts.hub, {
      topic: `${channel.streamName}:${workspaceId}`,
      filter: (event) => event.key === key,
      initial: async () => [],
      coalesceKey: coalesce ? (event) => `${event.key}|${coalesce(event.data, event.input)}` : undefined,
      signal: raw.signal,
    }) as unknown as ChannelSubscription<C>;
  }

  /** Throws FORBIDDEN unless `principal` is in the workspace and the channel's `authorize` agrees. */
  async authorize(
    principal: Principal,
    channel: AnyChannel,
    workspaceId: string,
    input: unknown,
    action: 'subscribe' | 'publish',
  ): Promise<void> {
    assertAccess(principal, workspaceId, 'member');
    if (!channel.authorize) return;
    const allowed = await channel.authorize({ principal, workspaceId, input, action });
    if (allowed !== true) {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: `Not allowed to ${action} to channel "${channel.name}" ${channelKey(input)}`,
      });
    }
  }

  private entry(channel: AnyChannel): Entry {
    const entry = this.entries.get(channel.name);
    if (!entry || entry.channel !== channel) {
      throw new TRPCError({
        code: 'INTERNAL_SERVER_ERROR',
        message: `Channel "${channel.name}" is not registered with this node: pass it to startPulseServer({ channels }) (or createPublisher)`,
      });
    }
    return entry;
  }

  private async findKey(
    streamKey: string,
    sender: string,
    idempotencyKey: string,
  ): Promise<ChannelPublishResult | null> {
    const row = await this.db
      .selectFrom('pulse_channel_publishes')
      .select('seq')
      .where('stream_key', '=', streamKey)
      .where('sender', '=', sender)
      .where('idempotency_key', '=', idempotencyKey)
      .executeTakeFirst();
    return row ? { id: String(Number(row.seq)), created: false } : null;
  }
}

/** The topic key of a parsed input, bounded in size. */
function keyOf(input: unknown): string {
  const key = channelKey(input);
  if (key.length > MAX_KEY_LENGTH) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `Channel input too large (max ${MAX_KEY_LENGTH} characters of JSON)`,
    });
  }
  return key;
}

const idempotencyKeySchema = z.string().min(1).max(200);

/** The publish input of a channel, as its procedure parses it. */
export type ChannelPublishSchema<C extends AnyChannel> = z.ZodType<
  {
    workspaceId: string;
    input: z.output<C['input']>;
    event: z.output<C['event']>;
    idempotencyKey?: string | undefined;
  },
  {
    workspaceId: string;
    input: z.input<C['input']>;
    event: z.input<C['event']>;
    idempotencyKey?: string | undefined;
  }
>;

/** The subscribe input of a channel, as its procedure parses it. */
export type ChannelSubscribeSchema<C extends AnyChannel> = z.ZodType<
  { workspaceId: string; input: z.output<C['input']>; lastEventId?: string | null | undefined },
  { workspaceId: string; input: z.input<C['input']>; lastEventId?: string | null | undefined }
>;

/** The publish input of a channel (the procedure's and the server-side publisher's). */
export function publishSchema<C extends AnyChannel>(channel: C): ChannelPublishSchema<C> {
  return z.object({
    workspaceId: idSchema,
    input: channel.input,
    event: channel.event,
    idempotencyKey: idempotencyKeySchema.optional(),
  }) as unknown as ChannelPublishSchema<C>;
}

/** The subscribe input of a channel; `lastEventId` is the resume point (tRPC sets it on reconnect). */
export function subscribeSchema<C extends AnyChannel>(channel: C): ChannelSubscribeSchema<C> {
  return z.object({
    workspaceId: idSchema,
    input: channel.input,
    lastEventId: streamEventIdSchema.nullish(),
  }) as unknown as ChannelSubscribeSchema<C>;
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: z.prettifyError(parsed.error), cause: parsed.error });
  }
  return parsed.data;
}
