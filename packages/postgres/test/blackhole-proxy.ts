/**
 * A TCP proxy to the Postgres server that can turn into a black hole: while dropping, every byte
 * in either direction is discarded and nothing is closed or reset (a closing client's FIN is not
 * answered either), which is what a silent network partition looks like to a client. New
 * connections are accepted and then hear nothing. For the deadline tests, without Toxiproxy.
 */
import net from 'node:net';

export interface BlackholeProxy {
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  drop(dropping: boolean): void;
  close(): Promise<void>;
}

export async function blackholeProxy(targetUrl: string): Promise<BlackholeProxy> {
  const target = new URL(targetUrl);
  let dropping = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({
      host: target.hostname,
      port: Number(target.port || 5432),
      allowHalfOpen: true,
    });
    sockets.add(client);
    sockets.add(upstream);
    const pipe = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (!dropping) to.write(chunk);
      });
      from.on('end', () => {
        if (!dropping) to.end();
      });
    };
    pipe(client, upstream);
    pipe(upstream, client);
    const destroy = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', destroy);
    upstream.on('error', destroy);
    client.on('close', () => !dropping && destroy());
    upstream.on('close', () => !dropping && destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    urlFor(url) {
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(port);
      return proxied.href;
    },
    drop(on) {
      dropping = on;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
