import type { AnyTRPCProcedure, AnyTRPCRouter } from '@trpc/server';
import { memberProcedure } from '../trpc.js';
import type { AnyChannel } from './channel.js';
import { publishSchema, subscribeSchema } from './channels.service.js';

/** Which channel a procedure built by `channelProcedures` serves (startPulseServer finds them in the router). */
const channelOfProcedure = new WeakMap<object, AnyChannel>();

/**
 * A channel's two procedures: `subscribe` (a subscription over the WebSocket: resumable with
 * `lastEventId` on a durable channel) and `publish` (a mutation: WebSocket, HTTP and REST), both
 * behind the workspace check and the channel's `authorize`, with the same rate limits as every
 * Pulse mutation.
 */
export function channelProcedures<C extends AnyChannel>(channel: C) {
  const subscribe = memberProcedure
    .input(subscribeSchema(channel))
    .subscription(({ ctx, input, signal }) =>
      ctx.services.channels.subscribe(ctx.principal, channel, { ...input, signal }),
    );
  const publish = memberProcedure
    .input(publishSchema(channel))
    .mutation(({ ctx, input }) => ctx.services.channels.publish(ctx.principal, channel, input));
  channelOfProcedure.set(subscribe, channel);
  channelOfProcedure.set(publish, channel);
  return { subscribe, publish };
}

/** The router record of a list of channels: `{ [name]: { subscribe, publish } }`. */
export type ChannelRouterRecord<T extends readonly AnyChannel[]> = {
  [C in T[number] as C['name']]: ReturnType<typeof channelProcedures<C>>;
};

/**
 * The procedures of the app's channels, to spread into its router under `channels`, so their
 * paths are `channels.<name>.subscribe` / `channels.<name>.publish` (and REST
 * `POST /realtime/channels/<name>/publish`), typed end to end.
 *
 * @example
 * export const appRouter = router({ ...pulseRouters, posts: postsRouter, channels: channelRouter([comments]) });
 * await startPulseServer({ router: appRouter });
 */
export function channelRouter<const T extends readonly AnyChannel[]>(channels: T): ChannelRouterRecord<T> {
  const record: Record<string, ReturnType<typeof channelProcedures>> = {};
  for (const channel of channels) {
    if (Object.hasOwn(record, channel.name)) throw new Error(`Channel "${channel.name}" is listed twice`);
    record[channel.name] = channelProcedures(channel);
  }
  return record as ChannelRouterRecord<T>;
}

/** The channels whose procedures a router serves, with the path prefix each sits under. */
export function channelsInRouter(router: AnyTRPCRouter): Array<{ channel: AnyChannel; path: string }> {
  const found = new Map<AnyChannel, string>();
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;
  for (const [path, procedure] of Object.entries(procedures)) {
    const channel = channelOfProcedure.get(procedure);
    if (channel && path.endsWith('.publish')) found.set(channel, path.slice(0, -'.publish'.length));
  }
  return [...found].map(([channel, path]) => ({ channel, path }));
}
