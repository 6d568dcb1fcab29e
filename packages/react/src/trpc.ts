import type { AppRouter } from '@pulse/client';
import { createTRPCReact } from '@trpc/react-query';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

/**
 * The typed tRPC React bindings for Pulse's router, bound to the client `<PulseProvider>` owns.
 * Use it for anything the Pulse hooks do not cover: `trpc.stats.workspace.useQuery({ workspaceId })`.
 *
 * @example
 * ```tsx
 * const online = trpc.presence.isOnline.useQuery({ workspaceId: 'acme', userId: 'bob' });
 * ```
 */
export const trpc = createTRPCReact<AppRouter>();

/** Every procedure's output type, straight from the server's router. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;
/** Every procedure's input type, straight from the server's router. */
export type RouterInputs = inferRouterInputs<AppRouter>;
