import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_SCOPES, createTestAccount, startTestServer, type TestServer } from './helpers/server.ts';

// docs/gateways/nginx.md, run for real: its ```nginx block is what this file starts, in front of a
// small upstream and a real Tessera. The four lines marked PLACEHOLDER(...) in the guide are the
// only ones changed.

const NGINX = '/usr/sbin/nginx';
const GUIDE = new URL('../docs/gateways/nginx.md', import.meta.url);
const MISSING = 'nginx not installed: apt-get install nginx';
const installed = existsSync(NGINX);

if (!installed && process.env.CI === 'true') {
  test('nginx is installed (docs/gateways/nginx.md is tested with a real nginx)', () => {
    assert.fail(`${NGINX} is missing on CI: .ci/run must install it (apt-get install -y nginx)`);
  });
}

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: unknown;
}

/** The ```nginx block of the guide with its placeholders replaced; fails if the guide changed shape. */
function guideConfig(
  markdown: string,
  values: { tessera: string; upstream: string; listen: string; logs: string },
): string {
  const blocks = [...markdown.matchAll(/^```nginx\n([\s\S]*?)^```$/gm)];
  assert.equal(blocks.length, 1, 'the guide has exactly one ```nginx block');
  let config = blocks[0]?.[1] ?? '';
  const replace = (name: string, from: string, to: string) => {
    const lines = config.split('\n').filter((line) => line.includes(`# PLACEHOLDER(${name})`));
    assert.equal(lines.length, 1, `exactly one line is marked PLACEHOLDER(${name})`);
    const line = lines[0] ?? '';
    assert.ok(line.includes(from), `the PLACEHOLDER(${name}) line contains ${from}`);
    config = config.replace(line, line.replace(from, to));
  };
  replace('tessera', '127.0.0.1:3000', values.tessera);
  replace('upstream', '127.0.0.1:8080', values.upstream);
  replace('listen', 'listen 80;', `listen ${values.listen};`);
  replace('logs', '/var/log/nginx/', `${values.logs}/`);
  return config;
}

describe('nginx in front of Tessera, configured as docs/gateways/nginx.md says', {
  skip: installed ? false : MISSING,
}, () => {
  let dir: string;
  let tessera: TestServer | undefined;
  let upstream: Server;
  let nginx: ChildProcess | undefined;
  let base: string;
  let adminToken: string;
  const seen: Seen[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-nginx-'));
    // Two fonts:read requests per day and token: the third is rate limited.
    const configFile = join(dir, 'tessera.json');
    writeFileSync(
      configFile,
      JSON.stringify({ limits: { scopes: { 'fonts:read': { limit: 2, interval: 86_400 } } } }),
    );
    tessera = await startTestServer({ env: { TESSERA_CONFIG: configFile } });
    const account = await createTestAccount(tessera.services, 'alice', ADMIN_SCOPES);
    adminToken = account.adminToken;

    upstream = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ upstream: true }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));

    const port = await freePort();
    const config = guideConfig(readFileSync(GUIDE, 'utf8'), {
      tessera: new URL(tessera.url).host,
      upstream: `127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      listen: `127.0.0.1:${port}`,
      logs: dir,
    });
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((name) => `    ${name}_temp_path ${dir}/${name};`)
      .join('\n');
    const main = join(dir, 'nginx.conf');
    writeFileSync(
      main,
      `worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n${temp}\n${config}\n}\n`,
    );
    nginx = spawn(
      NGINX,
      ['-p', dir, '-c', main, '-g', `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    nginx.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    base = `http://127.0.0.1:${port}`;
    await waitForNginx(base, nginx, () => `${stderr}\n${readIfExists(join(dir, 'error.log'))}`);
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx?.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await new Promise((resolve) => upstream?.close(resolve));
    await tessera?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function createToken(
    scopes: readonly string[],
    options: { readonly allowedUrls?: readonly string[] } = {},
  ): Promise<{ token: string; id: string }> {
    assert.ok(tessera);
    const created = await tessera.services.tokens.create({ kind: 'operator' }, 'alice', {
      note: 'nginx test',
      scopes,
      allowedUrls: options.allowedUrls ?? null,
      extensions: {},
      rateLimit: null,
      expiresAt: null,
    });
    assert.ok(created.token);
    return { token: created.token, id: created.id };
  }

  async function get(path: string, headers: Readonly<Record<string, string>> = {}): Promise<Answer> {
    const response = await fetch(`${base}${path}`, { headers, redirect: 'manual' });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, headers: response.headers, text, body };
  }

  /** Asserts nginx refused with `status` and Tessera's JSON body, and the upstream saw nothing. */
  async function assertRefused(request: Promise<Answer>, status: number, message: string): Promise<Answer> {
    const before = seen.length;
    const answer = await request;
    assert.equal(answer.status, status, answer.text);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(answer.body, { message });
    assert.equal(seen.length, before, 'the upstream was not asked');
    return answer;
  }

  test('a token with styles:read reaches the upstream, which sees who it is but not the token', async () => {
    const { token, id } = await createToken(['styles:read']);
    const answer = await get(`/styles/v1/alice/streets?fresh=1&access_token=${token}&zoom=2`, {
      'X-Tessera-Username': 'mallory',
      'X-Tessera-Token-Usage': 'sk',
    });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, { upstream: true });
    const request = seen.at(-1);
    assert.ok(request);
    assert.equal(request.url, '/styles/v1/alice/streets?fresh=1&zoom=2');
    assert.equal(request.headers['x-tessera-username'], 'alice');
    assert.equal(request.headers['x-tessera-token-id'], id);
    assert.equal(request.headers['x-tessera-token-usage'], 'pk');
    assert.equal(request.headers['x-tessera-service'], 'styles');
    assert.ok(!JSON.stringify(request).includes(token), 'the upstream never sees the token');
    assert.ok(
      !readIfExists(join(dir, 'tessera-access.log')).includes(token),
      'the access log never has the token',
    );
    assert.match(readIfExists(join(dir, 'tessera-access.log')), /alice .*"GET \/styles\/v1\/alice\/streets /);
    // The scope comes from the location, not from Tessera's route map (which knows /styles/v1/ only).
    const custom = await get(`/styles/custom/page.json?access_token=${token}`);
    assert.equal(custom.status, 200, custom.text);
    assert.equal(seen.at(-1)?.url, '/styles/custom/page.json');
  });

  test('a Bearer token works too, and the upstream gets no Authorization header', async () => {
    const { token } = await createToken(['fonts:read', 'styles:read']);
    const answer = await get('/styles/v1/alice/streets', { Authorization: `Bearer ${token}` });
    assert.equal(answer.status, 200, answer.text);
    const request = seen.at(-1);
    assert.equal(request?.headers.authorization, undefined);
    assert.equal(request?.headers['x-tessera-username'], 'alice');
  });

  test('without a token: 401 with the JSON body and a Bearer challenge', async () => {
    const answer = await assertRefused(get('/styles/v1/alice/streets'), 401, 'An access token is required');
    assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer realm="tessera"/);
    await assertRefused(
      get('/styles/v1/alice/streets?access_token=pk.nope'),
      401,
      'The access token is malformed',
    );
  });

  test('a public token without the scope: 403, whatever gateway headers the client forges', async () => {
    const { token } = await createToken(['fonts:read']);
    const path = `/styles/v1/alice/streets?access_token=${token}`;
    const message = 'This request requires a token with styles:read scope';
    const answer = await assertRefused(get(path), 403, message);
    assert.match(answer.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    // nginx sets X-Original-URI itself; the auth URL's scope comes from the configuration only.
    await assertRefused(
      get(path, {
        'X-Tessera-Scope': 'fonts:read',
        'X-Original-URI': `/fonts/v1/alice/x?access_token=${token}`,
      }),
      403,
      message,
    );
    // Another gateway's convention, naming another path: refused, never admitted.
    const before = seen.length;
    const forged = await get(path, { 'X-Forwarded-Uri': `/fonts/v1/alice/x?access_token=${token}` });
    assert.ok(forged.status === 400 || forged.status === 403, forged.text);
    assert.equal(seen.length, before);
  });

  test('a URL-restricted token: 403 from another Origin, 200 from its own', async () => {
    const { token } = await createToken(['styles:read'], { allowedUrls: ['https://app.example.com'] });
    const path = `/styles/v1/alice/streets?access_token=${token}`;
    await assertRefused(
      get(path, { Origin: 'https://evil.example.com' }),
      403,
      'This token is not allowed from this URL',
    );
    await assertRefused(get(path), 403, 'This token is not allowed from this URL');
    assert.equal((await get(path, { Origin: 'https://app.example.com' })).status, 200);
    assert.equal((await get(path, { Referer: 'https://app.example.com/maps' })).status, 200);
  });

  test('a rate-limited token: 429 with Retry-After, although auth_request knows only 401 and 403', async () => {
    const { token } = await createToken(['fonts:read']);
    const path = `/fonts/v1/alice/Roboto/0-255.pbf?access_token=${token}`;
    const first = await get(path);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-rate-limit-limit'), '2');
    assert.equal(first.headers.get('x-rate-limit-remaining'), '1');
    assert.equal((await get(path)).status, 200);
    const limited = await assertRefused(get(path), 429, 'Too Many Requests');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('x-rate-limit-limit'), '2');
    assert.equal(limited.headers.get('x-rate-limit-remaining'), '0');
    assert.match(readIfExists(join(dir, 'tessera-access.log')), /" 429 \d+ rate_limited /);
  });

  test('a deleted token is refused on the very next request', async () => {
    assert.ok(tessera);
    const { token, id } = await createToken(['styles:read']);
    const path = `/styles/v1/alice/streets?access_token=${token}`;
    assert.equal((await get(path)).status, 200);
    const deleted = await fetch(`${tessera.url}/tokens/v2/alice/${id}?access_token=${adminToken}`, {
      method: 'DELETE',
    });
    assert.equal(deleted.status, 204);
    await assertRefused(get(path), 401, 'The access token has been revoked');
  });

  test('two different tokens are a 400, unknown paths a 404, both as JSON', async () => {
    const one = await createToken(['styles:read']);
    const two = await createToken(['styles:read']);
    await assertRefused(
      get(`/styles/v1/alice/streets?access_token=${one.token}`, { Authorization: `Bearer ${two.token}` }),
      400,
      'Bad Request',
    );
    await assertRefused(get(`/admin?access_token=${one.token}`), 404, 'Not Found');
  });

  // Last: it stops Tessera.
  test('when Tessera is down, nginx refuses with 503 (fail closed)', async () => {
    const { token } = await createToken(['styles:read']);
    await tessera?.close();
    tessera = undefined;
    const answer = await assertRefused(
      get(`/styles/v1/alice/streets?access_token=${token}`),
      503,
      'Service Unavailable',
    );
    assert.equal(answer.headers.get('retry-after'), '5');
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits until nginx answers; fails with its own words if it exits first or takes over 10 s. */
async function waitForNginx(base: string, nginx: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (nginx.exitCode !== null) assert.fail(`nginx exited with ${nginx.exitCode}:\n${output()}`);
    try {
      await fetch(`${base}/`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  assert.fail(`nginx did not answer within 10 s:\n${output()}`);
}

function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}
