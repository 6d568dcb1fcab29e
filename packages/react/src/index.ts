/** @pulse/react: PulseProvider and typed hooks for presence, typing, notifications, dashboard, inbox. */
export { PulseError, type PulseErrorContext, type ConnectionStatus } from '@pulse/client';
export type { LiveStatus } from './live-status.js';
export { type PresencePatch, PresenceReporter, type PresenceReporterState } from './presence-reporter.js';
export {
  PulseProvider,
  type PulseProviderProps,
  usePulseClient,
  useViewer,
  WS_MUTATIONS,
} from './PulseProvider.js';
export { type RouterInputs, type RouterOutputs, trpc } from './trpc.js';
export type {
  ChannelEventFor,
  ChannelMessageFor,
  ChannelName,
  ChannelSubscribeInput,
  TypedUseChannel,
  UseChannelOptions,
  UseChannelResult,
} from './useChannel.js';
export {
  createPulseHooks,
  type DashboardKindOf,
  type DashboardUpdateOf,
  type NotificationKindOf,
  type NotificationOf,
  type NotificationPreferencesChangeOf,
  type NotificationPreferencesOf,
  type PulseHooks,
  type TypedUseDashboard,
  type TypedUseDashboardHistory,
  type TypedUseNotificationPreferences,
  type TypedUseNotifications,
} from './createPulseHooks.js';
export { useConnectionStatus } from './useConnectionStatus.js';
export {
  applyDashboardEvent,
  applyLivePoint,
  dashboardSeriesOf,
  mergeDashboardSeries,
  type UseDashboardHistoryOptions,
  type UseDashboardHistoryResult,
  type UseDashboardOptions,
  type UseDashboardResult,
  useDashboard,
  useDashboardHistory,
} from './useDashboard.js';
export {
  type PendingMessage,
  type UseConversationResult,
  type UseInboxOptions,
  type UseInboxResult,
  useConversation,
  useInbox,
} from './useInbox.js';
export {
  type NotificationPreferencesChange,
  type UseNotificationPreferencesOptions,
  type UseNotificationPreferencesResult,
  useNotificationPreferences,
} from './useNotificationPreferences.js';
export {
  matchesNotificationFilter,
  type NotificationStatus,
  type NotificationTarget,
  type UseNotificationsOptions,
  type UseNotificationsResult,
  useNotifications,
} from './useNotifications.js';
export {
  applyPresenceEvent,
  type UsePresenceOptions,
  type UsePresenceResult,
  usePresence,
  usePresencePage,
} from './usePresence.js';
export { applyTypingEvent, TYPING_THROTTLE_MS, type UseTypingResult, useTyping } from './useTyping.js';
export type { Viewer } from './viewer.js';
