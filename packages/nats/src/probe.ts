/**
 * A look at the servers before the NATS client connects: does any of them answer?
 *
 * Why: when a server accepts the TCP connection but never sends its INFO (a hung server, a
 * half-open partition, a port that speaks something else), the NATS client's `connect()`
 * rejects after its `timeout` but leaves that socket open (nats.js 3.4: the transport ignores
 * `close()` until it is connected), and the socket keeps the process alive for as long as the
 * peer does (DESIGN.md section 13, "connect failure cleans up"). This probe opens its own socket
 * to every server at once, resolves as soon as one of them sends `INFO` (or, for servers that
 * expect TLS first, accepts the connection), and destroys every socket it opened, whatever the
 * outcome. Only then does the client connect, so a server that does not answer never gets a
 * socket the adapter cannot close. (A server that answers the probe and then stops answering in
 * the next instant can still catch the client's socket: a much smaller window.)
 */
import net from 'node:net';

/** Host and port of a server string (`nats://h:4222`, `tls://h`, `h:4222`, `[::1]:4222`). */
export function serverAddress(server: string): { host: string; port: number } {
  const withScheme = /^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`;
  const url = new URL(withScheme);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 4222 };
}

/**
 * Resolves once one of `servers` answers within `timeoutMs`; rejects otherwise, with the last
 * socket error (`ECONNREFUSED`...) or an error whose `code` is `ETIMEDOUT`.
 */
export function probe(servers: readonly string[], timeoutMs: number, tlsFirst: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const sockets: net.Socket[] = [];
    let failures = 0;
    let lastError: unknown;
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      if (error === undefined) resolve();
      else reject(error);
    };
    const timer = setTimeout(() => {
      const error = Object.assign(new Error(`no NATS server answered within ${timeoutMs} ms`), {
        code: 'ETIMEDOUT',
      });
      finish(error);
    }, timeoutMs);
    for (const server of servers) {
      let address: { host: string; port: number };
      try {
        address = serverAddress(server);
      } catch (error) {
        lastError = error;
        if (++failures === servers.length) finish(error);
        continue;
      }
      const socket = net.connect(address.port, address.host);
      sockets.push(socket);
      let seen = '';
      if (tlsFirst) socket.once('connect', () => finish());
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        if (seen.length >= 5 || seen.includes('\n')) {
          if (seen.startsWith('INFO ')) finish();
          else socket.destroy(new Error(`not a NATS server at ${address.host}:${address.port}`));
        }
      });
      socket.on('error', (error) => {
        lastError = error;
      });
      socket.on('close', () => {
        if (++failures === servers.length) finish(lastError ?? new Error('connection closed'));
      });
    }
  });
}
