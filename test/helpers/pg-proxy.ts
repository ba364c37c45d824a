import { connect, createServer, type Server, type Socket } from 'node:net';
import { POSTGRES_ADMIN_URL } from './postgres.ts';

/**
 * A TCP port in front of the real PostgreSQL that a test opens and cuts at will: PostgreSQL as seen
 * from a node when it stops, restarts or is cut off, without touching the server other suites use.
 */
export interface PostgresProxy {
  readonly port: number;
  /** `url` with its port swapped for this proxy's. */
  through(url: string): string;
  open(): Promise<void>;
  /** Refuses new connections and drops every open one. */
  cut(): Promise<void>;
}

export async function startPostgresProxy(options: { readonly open?: boolean } = {}): Promise<PostgresProxy> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  const target = new URL(POSTGRES_ADMIN_URL);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const proxy: PostgresProxy = {
    port,
    through(url) {
      const routed = new URL(url);
      routed.hostname = '127.0.0.1';
      routed.port = String(port);
      return routed.toString();
    },
    async open() {
      server = createServer((socket) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const end of [socket, upstream]) {
          sockets.add(end);
          end.on('close', () => sockets.delete(end));
        }
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    },
    async cut() {
      const closing = server ? new Promise((resolve) => server?.close(resolve)) : Promise.resolve();
      for (const socket of sockets) socket.destroy();
      server = undefined;
      await closing;
    },
  };
  if (options.open ?? true) await proxy.open();
  return proxy;
}
