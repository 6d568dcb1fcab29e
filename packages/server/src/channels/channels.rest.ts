import type { RestEndpoint } from '../infra/rest.js';
import type { AnyChannel } from './channel.js';

/**
 * `POST /realtime/channels/<name>/publish` per channel the router serves: the body is the publish
 * procedure's input (`{ workspaceId, input, event, idempotencyKey? }`), so auth, limits, `authorize`
 * and validation are the procedure's own.
 */
export function channelRestEndpoints(served: Array<{ channel: AnyChannel; path: string }>): RestEndpoint[] {
  return served.map(({ channel, path }) => ({
    method: 'POST',
    path: `/realtime/channels/${channel.name}/publish`,
    procedure: `${path}.publish`,
    type: 'mutation',
    summary: `Publishes an event on the ${channel.durable ? 'durable' : 'ephemeral'} channel "${channel.name}"`,
    tags: ['channels'],
    input: (_params, body) => body,
  }));
}
