import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { localUrl } from '../config.ts';
import type { Logger } from '../logging/logger.ts';
import type { Services } from '../services/create-services.ts';
import { createApp } from './app.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on the configured host and port; resolves once the socket is bound. */
export async function startServer(services: Services, logger: Logger): Promise<RunningServer> {
  const { config } = services;
  let publicUrl = config.publicUrl ?? localUrl(config.host, config.port);
  const app = createApp(services, { logger, publicUrl: () => publicUrl });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const instance = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () =>
      resolve(instance),
    );
    instance.once('error', reject);
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
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
