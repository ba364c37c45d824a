import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { createApp } from '../src/http/app.ts';
import { silentLogger } from '../src/logging/logger.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const DASHBOARD = /^\/(account|signin|signup|signout|assets)(\/|$)/;

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

/** `METHOD /path` rows of the Routes table in docs/dashboard.md. */
function documentedRoutes(): Set<string> {
  const text = readFileSync(resolve(import.meta.dirname, '../docs/dashboard.md'), 'utf8');
  const section = text.split('## Routes')[1]?.split('\n## ')[0] ?? '';
  const rows = section.split('\n').filter((line) => /^\| (GET|POST)/.test(line));
  return new Set(
    rows.flatMap((line) => {
      const [, methods = '', path = ''] = line.split('|').map((cell) => cell.trim());
      const route = /`([^`]+)`/.exec(path)?.[1] ?? '';
      return methods.split(', ').map((method) => `${method} ${route}`);
    }),
  );
}

function servedRoutes(): Set<string> {
  const app = createApp(server.services, { logger: silentLogger, publicUrl: () => server.url });
  return new Set(
    app.routes
      .filter((route) => route.method !== 'ALL' && (DASHBOARD.test(route.path) || route.path === '/'))
      .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`),
  );
}

test('docs/dashboard.md lists exactly the dashboard routes the server answers', () => {
  assert.deepEqual([...documentedRoutes()].sort(), [...servedRoutes()].sort());
});

test('every page the docs show a picture of has its picture in docs/images', () => {
  const text = readFileSync(resolve(import.meta.dirname, '../docs/dashboard.md'), 'utf8');
  const images = [...text.matchAll(/\]\((images\/[^)]+)\)/g)].map((match) => match[1] ?? '');
  assert.ok(images.length > 0);
  for (const image of images) readFileSync(resolve(import.meta.dirname, '../docs', image));
});
