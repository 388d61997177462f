/**
 * Network faults for the deadline tests, built on node:net: a server that never answers, and a
 * proxy that can turn into a blackhole. Not a test file itself.
 */
import net from 'node:net';

/** A TCP server that accepts connections and never answers: a partition after the handshake. */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A TCP proxy to moto that can be switched to a blackhole: bytes in either direction are dropped
 * and new connections are accepted and left silent, as when a network path fails without resets.
 */
export async function proxyTo(target: { host: string; port: number }) {
  let blackholed = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (blackholed) return;
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      if (!blackholed) client.destroy();
    });
    upstream.on('error', () => {});
    client.on('data', (chunk) => void (blackholed || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (blackholed || client.write(chunk)));
    client.on('close', () => {
      if (!blackholed) upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => {
      blackholed = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
