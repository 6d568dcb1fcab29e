import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on a free loopback port in front of one node port. `stall()` stops moving bytes both
 * ways (the sockets stay open, nothing is read or written: a network that froze) until `resume()`;
 * connections accepted meanwhile are held the same way.
 */
export interface StallProxy {
  port: number;
  url: string;
  stall(): void;
  resume(): void;
  /** Open client-side connections. */
  connections(): number;
  close(): Promise<void>;
}

export async function startStallProxy(targetPort: number): Promise<StallProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let stalled = false;
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    for (const s of pair) s.on('error', () => {});
    // NOTE: forwarded by hand, not pipe(): pipe resumes a source on the destination's drain, which
    // would undo a stall.
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => {
        if (!stalled) from.resume();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    if (stalled) {
      client.pause();
      upstream.pause();
    }
    const done = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done);
    upstream.on('close', done);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stall() {
      stalled = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    resume() {
      stalled = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    connections: () => pairs.size,
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
