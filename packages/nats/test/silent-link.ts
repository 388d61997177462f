/**
 * A TCP relay between the adapter and the broker that can fall silent: while `silenced`, every
 * byte is dropped in both directions and both connections stay open, as in a partition that
 * drops packets without a reset. Closing a client connection closes its broker side, so the
 * broker notices a consumer that went away at once (as it would when the kernel closes a dead
 * process's socket).
 */
import net from 'node:net';

export interface SilentLink {
  /** Port to connect to instead of the broker's. */
  port: number;
  silence(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function silentLink(target: { host: string; port: number }): Promise<SilentLink> {
  let silent = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
      from.on('error', () => {});
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    silence: () => {
      silent = true;
    },
    restore: () => {
      silent = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
