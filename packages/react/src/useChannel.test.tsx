import {
  type MintOptions,
  channelRouter,
  defineChannel,
  mintToken,
  pulseRouters,
  router,
  startPulseServer,
} from '@pulse/server';
import { cleanup, render, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { fastClientOptions } from '../test/pulse-test-server.js';
import { PulseProvider, usePulseContext } from './PulseProvider.js';
import { createPulseHooks } from './createPulseHooks.js';
import type { ChannelEventFor } from './useChannel.js';

afterEach(() => cleanup());

const SECRET = 'use-channel-test-secret-long-enough-for-hs256-0123456789';

const notes = defineChannel({
  name: 'notes',
  input: z.object({ docId: z.string().min(1) }),
  event: z.object({ text: z.string().min(1) }),
  durable: true,
  retention: 3,
  authorize: ({ input }) => !input.docId.startsWith('secret'),
});
const cursors = defineChannel({
  name: 'cursors',
  input: z.object({ docId: z.string() }),
  event: z.object({ x: z.number(), y: z.number() }),
  durable: false,
});
const appRouter = router({ ...pulseRouters, channels: channelRouter([notes, cursors]) });
type TestRouter = typeof appRouter;
const { useChannel } = createPulseHooks<TestRouter>();

async function start() {
  const server = await startPulseServer({
    router: appRouter,
    sqliteFile: ':memory:',
    config: { port: 0, host: '127.0.0.1', logLevel: 'silent', jwt: { secret: SECRET } },
  });
  return Object.assign(server, {
    token: (opts: MintOptions) => mintToken(server.config.jwt, opts),
    note: (docId: string, text: string) =>
      server.channels.publish(notes, { workspaceId: 'acme', input: { docId }, event: { text } }),
    [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }),
  });
}

const reading: {
  current: ReturnType<typeof useChannel> | null;
  ctx: ReturnType<typeof usePulseContext> | null;
} = {
  current: null,
  ctx: null,
};
/** A component reading the `notes` channel (`off`: the hook is mounted but disabled). */
function Reader(props: {
  input: { workspaceId: string; input: { docId: string } };
  off?: boolean;
  onEvent: (event: Event) => void;
  onReset?: () => void;
}) {
  reading.ctx = usePulseContext();
  reading.current = useChannel('notes', props.input, {
    onEvent: props.onEvent,
    onReset: props.onReset,
    enabled: !props.off,
  });
  return null;
}

/** In place of a Reader: the reader unmounted, the provider stays. */
function Probe() {
  reading.ctx = usePulseContext();
  return null;
}

type Event = ChannelEventFor<TestRouter, 'notes'>;

describe('useChannel', () => {
  it('one shared subscription per (channel, input); only events reach onEvent; resumes after a remount with nothing lost or doubled', async () => {
    await using server = await start();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        {children}
      </PulseProvider>
    );
    const first: Event[] = [];
    const second: Event[] = [];
    const input = { workspaceId: 'acme', input: { docId: 'd1' } };
    const view = renderHook(
      () => ({
        a: useChannel('notes', input, { onEvent: (e) => first.push(e) }),
        b: useChannel(
          'notes',
          { workspaceId: 'acme', input: { docId: 'd1' } },
          { onEvent: (e) => second.push(e) },
        ),
        ctx: usePulseContext(),
      }),
      { wrapper },
    );
    await waitFor(() => expect(view.result.current.a.status).toBe('live'));
    expect(view.result.current.b.status).toBe('live');
    // One server subscription for both hooks.
    expect(view.result.current.ctx.subscriptions.keys()).toEqual([
      'channels.notes.subscribe\u0000{"workspaceId":"acme","input":{"docId":"d1"}}',
    ]);
    // The head's `sync` counts as live and gives the resume point, but is no event.
    await waitFor(() => expect(view.result.current.a.lastEventId).toBe('0'));
    expect(first).toEqual([]);

    await server.note('d1', 'one');
    await server.note('other', 'not this doc');
    await server.note('d1', 'two');
    await waitFor(() => expect(first.map((e) => e.data.text)).toEqual(['one', 'two']));
    expect(second.map((e) => e.data.text)).toEqual(['one', 'two']);
    expect(first[0]).toMatchObject({
      type: 'event',
      workspaceId: 'acme',
      input: { docId: 'd1' },
      from: 'system',
    });
    expect(view.result.current.a.lastEventId).toBe('3');

    view.unmount();

    // Unmount every reader (the server subscription ends), publish, mount again under the same
    // provider: it resumes from the kept id, so the missed event comes and the old ones do not.
    const seen: string[] = [];
    const page = render(<Reader input={input} onEvent={(e) => seen.push(e.data.text)} />, { wrapper });
    await waitFor(() => expect(reading.current?.status).toBe('live'));
    await server.note('d1', 'four');
    await waitFor(() => expect(seen).toEqual(['four']));
    page.rerender(<Probe />);
    await waitFor(() => expect(reading.ctx?.subscriptions.keys()).toEqual([]));
    await server.note('d1', 'five');
    page.rerender(<Reader input={input} onEvent={(e) => seen.push(e.data.text)} />);
    await waitFor(() => expect(seen).toEqual(['four', 'five']));
    expect(reading.current).toMatchObject({ status: 'live', lastEventId: '5', resets: 0 });
    await server.note('d1', 'six');
    await waitFor(() => expect(seen).toEqual(['four', 'five', 'six']));
    page.unmount();
  });

  it('a resume point past the retention window: reset → onReset (refetch), then the events that follow', async () => {
    await using server = await start();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        {children}
      </PulseProvider>
    );
    const input = { workspaceId: 'acme', input: { docId: 'd1' } };
    const seen: string[] = [];
    let resets = 0;
    const onEvent = (e: Event) => void seen.push(e.data.text);
    const onReset = () => void resets++;
    const page = render(<Reader input={input} onEvent={onEvent} onReset={onReset} />, { wrapper });
    await waitFor(() => expect(reading.current?.status).toBe('live'));
    await server.note('d1', 'one');
    await waitFor(() => expect(seen).toEqual(['one']));
    page.rerender(<Probe />);
    await waitFor(() => expect(reading.ctx?.subscriptions.keys()).toEqual([]));
    // Retention is 3: five more events push the kept id (1) out of the window.
    for (const text of ['a', 'b', 'c', 'd', 'e']) await server.note('d1', text);
    page.rerender(<Reader input={input} onEvent={onEvent} onReset={onReset} />);
    await waitFor(() => expect(reading.current?.resets).toBe(1));
    expect(resets).toBe(1);
    expect(reading.current?.status).toBe('live');
    // `reset` itself never reached onEvent; the events after it do.
    await server.note('d1', 'after');
    await waitFor(() => expect(seen.at(-1)).toBe('after'));
    expect(seen[0]).toBe('one');
    expect(seen).not.toContain(undefined);
    page.unmount();
  });

  it('an ephemeral channel: its untracked events reach onEvent, typed; no resume point', async () => {
    await using server = await start();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        {children}
      </PulseProvider>
    );
    const moves: Array<{ x: number; y: number }> = [];
    const view = renderHook(
      () =>
        useChannel(
          'cursors',
          { workspaceId: 'acme', input: { docId: 'd1' } },
          { onEvent: (event) => moves.push(event.data) },
        ),
      { wrapper },
    );
    await waitFor(() => expect(view.result.current.status).toBe('live'));
    await server.channels.publish(cursors, {
      workspaceId: 'acme',
      input: { docId: 'd1' },
      event: { x: 1, y: 2 },
    });
    await waitFor(() => expect(moves).toEqual([{ x: 1, y: 2 }]));
    expect(view.result.current.lastEventId).toBeNull();
  });

  it('authorize refusing the topic is status error with FORBIDDEN', async () => {
    await using server = await start();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        {children}
      </PulseProvider>
    );
    const view = renderHook(
      () => useChannel('notes', { workspaceId: 'acme', input: { docId: 'secret-1' } }),
      {
        wrapper,
      },
    );
    await waitFor(() => expect(view.result.current.status).toBe('error'));
    expect(view.result.current.error?.context).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('is typed with the app router: a wrong event field or input does not type-check', () => {
    expectTypeOf<Event['data']>().toEqualTypeOf<{ text: string }>();
    expectTypeOf<Event['input']>().toEqualTypeOf<{ docId: string }>();
    const check = () => {
      useChannel(
        'notes',
        { workspaceId: 'acme', input: { docId: 'd1' } },
        {
          // @ts-expect-error a note has `text`, not `body`
          onEvent: (event) => event.data.body,
        },
      );
      // @ts-expect-error the channel is keyed by `docId`
      useChannel('notes', { workspaceId: 'acme', input: { doc: 'd1' } });
      // @ts-expect-error no such channel
      useChannel('comments', { workspaceId: 'acme', input: { docId: 'd1' } });
    };
    expect(typeof check).toBe('function');
  });
});
