import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy extends AsyncDisposable {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `ws://127.0.0.1:<port>/trpc` */
  wsUrl: string;
  /** Cuts every open connection, both ends (no close frame: the client sees the socket die). */
  drop(): void;
  /** While refusing, new connections are closed as soon as they are accepted. */
  refuse(value: boolean): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on a free loopback port in front of a server, to cut live connections and refuse
 * new ones on demand (a network failure between a client and its node).
 */
export async function startProxy(target: { port: number; host?: string }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host ?? '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/trpc`,
    drop() {
      for (const s of sockets) s.destroy();
    },
    refuse(value) {
      refusing = value;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
