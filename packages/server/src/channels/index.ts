/** Typed channels: the app's own workspace-scoped topics, durable (on the stream kernel) or ephemeral. */
export {
  type AnyChannel,
  type Channel,
  type ChannelAuthorizeArgs,
  type ChannelDefinition,
  type ChannelEvent,
  type ChannelEventOf,
  type ChannelInputOf,
  type ChannelMessage,
  type ChannelPublishResult,
  channelKey,
  defineChannel,
} from './channel.js';
export {
  channelProcedures,
  type ChannelRouterRecord,
  channelRouter,
  channelsInRouter,
} from './channels.router.js';
export {
  type ChannelPublishInput,
  type ChannelSender,
  ChannelService,
  type ChannelServiceOptions,
  type ChannelSubscription,
} from './channels.service.js';
export { channelMigrations } from './channels.tables.js';
export { channelRestEndpoints } from './channels.rest.js';
