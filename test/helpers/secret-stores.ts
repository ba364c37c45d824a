import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { freePort } from './processes.ts';
import type { Hit, SecretScanner } from './secret-scan.ts';

// Where the secrets-at-rest test looks: a real `tessera serve` with its whole log in a file, a
// webhook receiver, a pg_dump and every Redis key. Each helper takes `defer`, which registers the
// undo of what it started with the test.

export type Defer = (cleanup: () => Promise<void> | void) => void;

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const exec = promisify(execFile);

export interface Serve {
  readonly url: string;
  readonly logFile: string;
  /** SIGTERM, as an operator stops it (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/**
 * `tessera serve` with stdout and stderr going straight to `<logDir>/tessera.log`, as under systemd
 * or Docker: the whole log, not the tail ./processes.ts keeps for error messages. A node that loses
 * its port to another process between freePort() and listen is started again on another.
 */
export async function startServe(
  env: Readonly<Record<string, string>>,
  logDir: string,
  defer: Defer,
): Promise<Serve> {
  const logFile = join(logDir, 'tessera.log');
  for (let attempt = 1; ; attempt++) {
    const serve = spawnServe(env, logFile, await freePort(), defer);
    try {
      await waitUntilReady(serve);
      return serve.node;
    } catch (error) {
      await serve.node.stop();
      if (attempt >= 3 || !readFileSync(logFile, 'utf8').includes('EADDRINUSE')) throw error;
    }
  }
}

function spawnServe(
  env: Readonly<Record<string, string>>,
  logFile: string,
  port: number,
  defer: Defer,
): { readonly node: Serve; readonly child: ChildProcess } {
  const fd = openSync(logFile, 'a');
  // The test process's environment less any Tessera setting or test-runner variable it carries.
  const inherited = Object.entries(process.env).filter(
    ([name]) => !name.startsWith('TESSERA_') && !name.startsWith('NODE_TEST'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
    env: { ...Object.fromEntries(inherited), PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  defer(stop);
  return { node: { url: `http://127.0.0.1:${port}`, logFile, stop }, child };
}

async function waitUntilReady({ node, child }: { node: Serve; child: ChildProcess }): Promise<void> {
  // tsx compiles the sources first: up to 30 s on a loaded machine.
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null)
      throw new Error(`tessera serve exited:\n${readFileSync(node.logFile, 'utf8')}`);
    const ready = await fetch(`${node.url}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`tessera serve was not ready:\n${readFileSync(node.logFile, 'utf8')}`);
}

/** A webhook receiver: deliveries are one more place a token could travel to. */
export async function webhookSink(
  defer: Defer,
): Promise<{ readonly url: string; readonly bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, bodies };
}

/** A plain-format dump of the whole database, schema and data (COPY rows), as an operator's backup. */
export async function pgDump(url: string): Promise<Buffer> {
  const args = ['--format=plain', '--no-owner', `--dbname=${url}`];
  const { stdout } = await exec('/usr/bin/pg_dump', args, {
    encoding: 'buffer',
    maxBuffer: 512 * 1024 * 1024,
  });
  return stdout;
}

const EMPTY = Buffer.alloc(0);
const MAX_KEYS = 100_000;

/** A key's type and value in the commands for its type, and its DUMP too (which may compress). */
async function redisValue(client: Redis, key: Buffer): Promise<Buffer[]> {
  const type = await client.type(key);
  let value: Buffer[] = [];
  if (type === 'string') value = [(await client.getBuffer(key)) ?? EMPTY];
  else if (type === 'hash')
    value = Object.entries(await client.hgetallBuffer(key))
      .flat()
      .map(toBuffer);
  else if (type === 'list') value = await client.lrangeBuffer(key, 0, -1);
  else if (type === 'set') value = await client.smembersBuffer(key);
  else if (type === 'zset') value = await client.zrangeBuffer(key, 0, -1, 'WITHSCORES');
  else if (type === 'stream') value = [Buffer.from(JSON.stringify(await client.xrange(key, '-', '+')))];
  return [Buffer.from(`${type}\n`), ...value, (await client.dumpBuffer(key)) ?? EMPTY];
}

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/**
 * Every key of the Redis database (SCAN) with its value. Tessera's counters sit under the fixed
 * prefix `tessera:rl:` (it is not configurable, so other test files share it): the whole keyspace
 * is read, up to 100,000 keys. A key gone between SCAN and TYPE reads as `none`.
 */
export async function scanRedis(
  scanner: SecretScanner,
  client: Redis,
): Promise<{ readonly keys: Buffer[]; readonly hits: Hit[] }> {
  const keys: Buffer[] = [];
  const hits: Hit[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    for (const key of batch.slice(0, MAX_KEYS - keys.length)) {
      keys.push(key);
      const value = await redisValue(client, key);
      const source = `redis ${key.toString('latin1')}`;
      hits.push(...scanner.scan(source, Buffer.concat([key, Buffer.from('\n'), ...value])));
    }
  } while (cursor !== '0' && keys.length < MAX_KEYS);
  return { keys, hits };
}
