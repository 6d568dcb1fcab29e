import { z } from 'zod';
import type { Principal } from '../auth/auth.schema.js';
import type { StreamControlEvent } from '../streams/stream.schema.js';

/** What an `authorize` callback is asked: may `principal` do `action` on this channel's topic? */
export interface ChannelAuthorizeArgs<TInput> {
  principal: Principal;
  workspaceId: string;
  /** The topic's key, parsed by the channel's `input` schema. */
  input: TInput;
  action: 'subscribe' | 'publish';
}

/**
 * The definition of a channel (see `defineChannel`). `TInput` keys the topic inside a workspace
 * (e.g. `{ postId }`), `TEvent` validates what is published on it.
 */
export interface ChannelDefinition<
  TName extends string,
  TInput extends z.ZodObject,
  TEvent extends z.ZodType,
  TDurable extends boolean,
> {
  /** Unique name: letters, digits, `_` and `-` (procedure path `channels.<name>`). */
  name: TName;
  /** The topic's key within a workspace; every field takes part (e.g. `z.object({ postId: z.string() })`). */
  input: TInput;
  /** Each published event is validated by this schema (a bad one is a BAD_REQUEST with its zod path). */
  event: TEvent;
  /**
   * `true`: stored before it is delivered, gap-free ids per workspace, resume with `lastEventId`
   * (`sync` / `reset`), idempotent publish per sender, `retention` events kept. `false`:
   * fire-and-forget through the hub (nothing stored; a slow socket drops, or keeps the latest per
   * `coalesce` key).
   */
  durable: TDurable;
  /** Durable channels: events kept per workspace for resuming (default 1,000). */
  retention?: number;
  /** Ephemeral channels: slow consumers keep only the newest event per key (latest-value delivery). */
  coalesce?: (event: z.output<TEvent>, input: z.output<TInput>) => string;
  /**
   * Decides who may subscribe and publish, after the workspace check (members of the workspace, or
   * services scoped to it, get this far). Return false for FORBIDDEN, or throw a TRPCError of your
   * own. Default: every member may do both. Server-side publishers (`server.channels.publish`,
   * `createPublisher`) are trusted and not asked.
   */
  authorize?: (args: ChannelAuthorizeArgs<z.output<TInput>>) => boolean | Promise<boolean>;
}

/** A channel made by `defineChannel`; pass it to `startPulseServer({ channels })` and `channelRouter`. */
export interface Channel<
  TName extends string = string,
  TInput extends z.ZodObject = z.ZodObject,
  TEvent extends z.ZodType = z.ZodType,
  TDurable extends boolean = boolean,
> extends Readonly<ChannelDefinition<TName, TInput, TEvent, TDurable>> {
  readonly retention: number;
  /** Stream and hub topic prefix: `channel.<name>`. */
  readonly streamName: string;
}

// biome-ignore lint/suspicious/noExplicitAny: any channel, whatever its schemas
export type AnyChannel = Channel<string, any, any, boolean>;

/** The event type of a channel (what its publishers send). */
export type ChannelEventOf<C extends AnyChannel> = z.output<C['event']>;
/** The key type of a channel (what its subscribers name). */
export type ChannelInputOf<C extends AnyChannel> = z.output<C['input']>;

/** One event on a channel, as every subscriber receives it. */
export interface ChannelEvent<TEvent, TInput> {
  type: 'event';
  workspaceId: string;
  /** When it was published (ISO 8601). */
  at: string;
  /** The topic's key, as the publisher named it. */
  input: TInput;
  /** The topic key: the input's JSON with sorted keys. */
  key: string;
  /** The user id of the publisher (`system` for server code). */
  from: string;
  data: TEvent;
}

/** What a durable channel's subscribers receive: events, and the kernel's `sync` / `reset`. */
export type ChannelMessage<TEvent, TInput> = ChannelEvent<TEvent, TInput> | StreamControlEvent;

/** What a publish returns: the event's id (durable) and whether it was new (false: idempotent repeat). */
export interface ChannelPublishResult {
  /** The event's id in its workspace's stream; null on an ephemeral channel. */
  id: string | null;
  created: boolean;
}

const channelNameSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'must be a letter then up to 63 letters, digits, _ or -');

/**
 * Defines a typed, workspace-scoped channel: a topic per `input` key (e.g. comments of a post),
 * events validated by `event`, durable or fire-and-forget, guarded by `authorize`.
 *
 * @example
 * export const comments = defineChannel({
 *   name: 'comments',
 *   input: z.object({ postId: z.string() }),
 *   event: z.object({ commentId: z.string(), text: z.string().max(2000) }),
 *   durable: true,
 *   authorize: ({ principal, input }) => canSeePost(principal.userId, input.postId),
 * });
 */
export function defineChannel<
  const TName extends string,
  TInput extends z.ZodObject,
  TEvent extends z.ZodType,
  TDurable extends boolean,
>(definition: ChannelDefinition<TName, TInput, TEvent, TDurable>): Channel<TName, TInput, TEvent, TDurable> {
  const name = channelNameSchema.safeParse(definition.name);
  if (!name.success) throw new Error(`Channel name "${definition.name}" ${name.error.issues[0]?.message}`);
  const retention = definition.retention ?? 1_000;
  if (!Number.isInteger(retention) || retention < 1) {
    throw new Error(`Channel ${definition.name}: retention must be a positive integer`);
  }
  if (definition.durable && definition.coalesce) {
    throw new Error(`Channel ${definition.name}: coalesce is for ephemeral channels (durable: false)`);
  }
  return Object.freeze({ ...definition, retention, streamName: `channel.${definition.name}` });
}

/**
 * The topic key of an input: its JSON with sorted keys, so `{ a, b }` and `{ b, a }` are one topic.
 * It is the stored recipient of a durable channel's events (replays filter by it in SQL).
 */
export function channelKey(input: unknown): string {
  return JSON.stringify(sortKeys(input));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
  return out;
}
