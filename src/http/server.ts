import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { localUrl } from '../config.ts';
import type { Logger } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { createApp } from './app.ts';
import { createForwardAuthHandler, FORWARD_AUTH_PATH } from './forward-auth.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on the configured host and port; resolves once the socket is bound. Forward-auth is
 * answered on plain node:http; everything else goes through the Hono app.
 */
export async function startServer(services: Services, logger: Logger): Promise<RunningServer> {
  const { config } = services;
  let publicUrl = config.publicUrl ?? localUrl(config.host, config.port);
  const app = createApp(services, { logger, publicUrl: () => publicUrl });
  const appListener = getRequestListener(app.fetch);
  const forwardAuth = createForwardAuthHandler(services.verification, logger);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (isForwardAuth(req.url)) forwardAuth(req, res);
    else void appListener(req, res);
  });
  await services.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = localUrl(config.host, port);
  if (!config.publicUrl) publicUrl = url;
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function isForwardAuth(url: string | undefined): boolean {
  if (!url?.startsWith(FORWARD_AUTH_PATH)) return false;
  const next = url.charAt(FORWARD_AUTH_PATH.length);
  return next === '' || next === '?' || next === '/';
}
