import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { type Config, localUrl } from '../config.ts';
import type { Logger } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { createApp } from './app.ts';
import { createForwardAuthHandler, FORWARD_AUTH_PATH } from './forward-auth.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface Listening {
  readonly url: string;
  readonly port: number;
  /** Starts the services and hands every request to the real app from then on. */
  serve(services: Services, logger: Logger): Promise<RunningServer>;
  close(): Promise<void>;
}

/**
 * Binds the configured host and port at once, before the store is reachable: until `serve`, the
 * process answers `/healthz` (200, it is alive) and everything else with 503 + `Retry-After`, so a
 * load balancer keeps it out of rotation and an orchestrator does not restart it while it waits for
 * its database. Nothing is verified or admitted while starting (fail closed).
 */
export async function listen(config: Config): Promise<Listening> {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = answerWhileStarting;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = localUrl(config.host, port);
  const publicUrl = config.publicUrl ?? url;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return {
    url,
    port,
    close,
    async serve(services: Services, logger: Logger): Promise<RunningServer> {
      const app = createApp(services, { logger, publicUrl: () => publicUrl });
      const appListener = getRequestListener(app.fetch);
      const forwardAuth = createForwardAuthHandler(services.verification, logger);
      await services.start();
      handle = (req, res) => {
        if (isForwardAuth(req.url)) forwardAuth(req, res);
        else void appListener(req, res);
      };
      return { url, port, close };
    },
  };
}

/**
 * Listens on the configured host and port and serves; resolves once the socket is bound and the
 * services started. Forward-auth is answered on plain node:http; everything else goes through the
 * Hono app.
 */
export async function startServer(services: Services, logger: Logger): Promise<RunningServer> {
  const listening = await listen(services.config);
  try {
    return await listening.serve(services, logger);
  } catch (error) {
    await listening.close();
    throw error;
  }
}

function answerWhileStarting(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  const alive = path === '/healthz';
  const body = alive
    ? { status: 'starting' }
    : path === '/readyz'
      ? { status: 'starting', message: 'Tessera is starting: the store is not reachable yet' }
      : { message: 'Service Unavailable' };
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  };
  if (!alive) headers['Retry-After'] = '5';
  res.writeHead(alive ? 200 : 503, headers);
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
}

function isForwardAuth(url: string | undefined): boolean {
  if (!url?.startsWith(FORWARD_AUTH_PATH)) return false;
  const next = url.charAt(FORWARD_AUTH_PATH.length);
  return next === '' || next === '?' || next === '/';
}
