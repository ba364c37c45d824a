import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli.ts';
import { TEST_KEY_ENCRYPTION_KEY } from './postgres.ts';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

/** The Tokens API limit of these files: high enough never to get in the way of a storm of requests. */
const GENEROUS_CONFIG = { limits: { tokensApi: { limit: 1_000_000, interval: 60 } } };

/** How long a node may take from spawn to a 200 on /readyz (tsx compiles the sources first). */
const READY_TIMEOUT_MS = 30_000;
/** How long a SIGTERM may take before the node is killed instead. */
const STOP_TIMEOUT_MS = 5_000;
/** The tail of a node's output kept for error messages. */
const OUTPUT_LIMIT = 8_192;

/** A free TCP port on 127.0.0.1 (free when asked: a node that loses the race is started again). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One real `tessera serve` process. */
export interface TesseraNode {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Its stdout and stderr so far (the last few KB), for failure messages. */
  output(): string;
  /** SIGTERM, as an operator would; SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
  /** SIGKILL: the process dies mid-request, with no chance to flush or close anything. */
  kill(): Promise<void>;
}

/** Every child still alive and every folder not yet removed: cleared when the test process exits. */
const alive = new Set<ChildProcess>();
const folders = new Set<string>();
process.on('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
  for (const dir of folders) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

/**
 * The environment of a node: the test process's own, less any Tessera setting or test-runner
 * variable it happens to carry, plus `env`.
 */
function nodeEnv(env: Readonly<Record<string, string>>, port: number): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('TESSERA_') && !name.startsWith('NODE_TEST'),
    ),
  );
  return {
    ...inherited,
    PORT: String(port),
    HOST: '127.0.0.1',
    TESSERA_LOG_LEVEL: 'silent',
    ...env,
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // Referenced again while waiting, or the test process could run out of work and end first.
  child.ref();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * A node does not keep the test process alive: a file that forgets to stop one still ends, and the
 * exit hook above kills what it left behind.
 */
function detach(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
}

/** Spawns `tessera serve` on `port`; it is ready once waitUntilReady() resolves. */
function spawnNode(name: string, env: Readonly<Record<string, string>>, port: number): TesseraNode {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
    env: nodeEnv(env, port),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  detach(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const node: TesseraNode = {
    name,
    url,
    pid: child.pid ?? -1,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    output: () => output,
    async stop() {
      if (!node.running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited(child);
      clearTimeout(timer);
    },
    async kill() {
      if (!node.running) return;
      child.kill('SIGKILL');
      await exited(child);
    },
  };
  return node;
}

/** Waits for a 200 on the node's /readyz (30 s at most); fails at once if the node exits. */
export async function waitUntilReady(node: TesseraNode): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!node.running) throw new Error(`node ${node.name} exited before it was ready:\n${node.output()}`);
    try {
      if ((await fetch(`${node.url}/readyz`)).status === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`node ${node.name} was not ready within ${READY_TIMEOUT_MS} ms:\n${node.output()}`);
}

/**
 * The nodes, data folders and config file of one test file. `cleanup()` (in an `after` hook) kills
 * whatever is still running and removes every folder, whether the tests passed or not.
 */
export class NodeGroup {
  readonly #nodes: TesseraNode[] = [];
  readonly #dirs: string[] = [];
  /** A TESSERA_CONFIG file with a generous Tokens API limit. */
  readonly configFile: string;

  constructor() {
    const dir = this.dataDir();
    this.configFile = join(dir, 'tessera.json');
    writeFileSync(this.configFile, JSON.stringify(GENEROUS_CONFIG));
  }

  /** A fresh, empty folder, removed by cleanup(). */
  dataDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-node-'));
    this.#dirs.push(dir);
    folders.add(dir);
    return dir;
  }

  /**
   * Starts a node with `env` (TESSERA_DATA_DIR, TESSERA_DATABASE_URL, ...) and the generous config
   * file. A node that loses its port to another process between freePort() and listen is started
   * again on another.
   */
  async start(name: string, env: Readonly<Record<string, string>>): Promise<TesseraNode> {
    const full = { TESSERA_CONFIG: this.configFile, ...env };
    for (let attempt = 1; ; attempt++) {
      // Known to cleanup() from the start, so a failure elsewhere while it starts leaves nothing behind.
      const node = spawnNode(name, full, await freePort());
      this.#nodes.push(node);
      try {
        await waitUntilReady(node);
        return node;
      } catch (error) {
        await node.kill();
        if (attempt >= 3 || !String((error as Error).message).includes('EADDRINUSE')) throw error;
      }
    }
  }

  /**
   * Spawns a node on `port` and returns at once, ready or not: for a node that cannot be ready yet
   * (its database is down). cleanup() stops it like the others.
   */
  launch(name: string, env: Readonly<Record<string, string>>, port: number): TesseraNode {
    const node = spawnNode(name, { TESSERA_CONFIG: this.configFile, ...env }, port);
    this.#nodes.push(node);
    return node;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => node.kill()));
    for (const dir of this.#dirs) {
      rmSync(dir, { recursive: true, force: true });
      folders.delete(dir);
    }
  }
}

/** The environment of a node (or CLI run) on PostgreSQL `databaseUrl` with its own data folder. */
export function postgresEnv(databaseUrl: string, dataDir: string): Record<string, string> {
  return {
    TESSERA_DATABASE_URL: databaseUrl,
    TESSERA_DATA_DIR: dataDir,
    // The same fixed key for every process, so they (and a restarted node) open the same keys.
    TESSERA_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
  };
}

/** The environment of a node (or CLI run) on its own SQLite database in `dataDir`. */
export function sqliteEnv(dataDir: string): Record<string, string> {
  return { TESSERA_DATABASE_URL: `sqlite:${join(dataDir, 'tessera.db')}`, TESSERA_DATA_DIR: dataDir };
}

export interface NodeResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed JSON body, or undefined when the body is empty or not JSON. */
  readonly body: unknown;
}

/** One request to a node; `token` goes in `access_token`, `json` is sent as a JSON body. */
export async function callNode(
  node: TesseraNode,
  method: string,
  path: string,
  request: {
    readonly token?: string;
    readonly json?: unknown;
    readonly headers?: Record<string, string>;
  } = {},
): Promise<NodeResponse> {
  const url = new URL(path, node.url);
  if (request.token !== undefined) url.searchParams.append('access_token', request.token);
  const headers: Record<string, string> = { ...request.headers };
  const init: RequestInit = { method, headers, redirect: 'manual' };
  if (request.json !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(request.json);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, text, body };
}

export interface CliAccount {
  readonly username: string;
  readonly defaultToken: string;
  /** A secret token holding `scopes`. */
  readonly adminToken: string;
}

/** Creates an account and a secret token for it with the real CLI, as an operator would. */
export async function createAccountWithCli(
  env: Readonly<Record<string, string>>,
  username: string,
  scopes: readonly string[],
): Promise<CliAccount> {
  const account = await runCli(
    ['accounts', 'create', username, '--email', `${username}@example.com`, '--password-stdin'],
    { env, stdin: 'correct horse battery staple\n' },
  );
  if (account.code !== 0) throw new Error(`accounts create failed: ${account.stderr}`);
  const args = ['tokens', 'create', username, '--scopes', scopes.join(','), '--note', 'admin'];
  const admin = await runCli(args, { env });
  if (admin.code !== 0) throw new Error(`tokens create failed: ${admin.stderr}`);
  return {
    username,
    defaultToken: (JSON.parse(account.stdout) as { defaultToken: string }).defaultToken,
    adminToken: (JSON.parse(admin.stdout) as { token: string }).token,
  };
}
