/**
 * kafkajs's own socket factory, plus what kafkajs lacks: a way to end every socket a client
 * opened. kafkajs's disconnect first waits for the requests in flight, so a connect still waiting
 * on a broker that accepts connections and never answers keeps its socket (and the process)
 * alive after `connect()` has given up. `close()` ends them, and from then on this factory
 * refuses new connections, so that retries kafkajs still has scheduled fail at once and stop.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/** kafkajs's default. */
const KEEP_ALIVE_DELAY_MS = 60_000;

export interface TrackedSockets {
  factory: ISocketFactory;
  /** Destroys every open socket; later connection attempts fail at once. */
  close(): void;
}

export function trackedSockets(): TrackedSockets {
  const open = new Set<net.Socket>();
  let closed = false;
  const factory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    if (closed) {
      // A retry scheduled before close: fail it now instead of opening a connection nobody owns.
      const refused = new net.Socket();
      queueMicrotask(() => refused.destroy(new Error('the kafka client is closed')));
      return refused;
    }
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
      : net.connect({ host, port }, onConnect);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    return socket;
  };
  return {
    factory,
    close() {
      closed = true;
      for (const socket of open) socket.destroy();
      open.clear();
    },
  };
}
