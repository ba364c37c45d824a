/**
 * Revocation across nodes (issue 5's target: p99 under 100 ms, never over 1 s, at least 100 trials).
 * Starts two Tessera processes (from dist/) on one fresh PostgreSQL database, then for each trial:
 * create a token through node A, warm node B's cache with it, delete it through node A, and time
 * from the 204 until node B refuses it, polling node B as fast as it answers. The baseline, taken
 * in the same run, is one forward-auth round trip to node B: the poll's own resolution.
 *
 *   npm run build && node --import tsx bench/revocation.ts [trials] [--json <file>]
 *
 * With `--json`, the figures are also written to <file> as `{"T67": {...}}` (the security plan's row),
 * which `npm run security:figures` collects for docs/security.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTemporaryDatabase, TEST_KEY_ENCRYPTION_KEY } from '../test/helpers/postgres.ts';

const jsonAt = process.argv.indexOf('--json');
const JSON_FILE = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const TRIALS = Number(
  process.argv.slice(2).find((arg, index, all) => !arg.startsWith('--') && all[index - 1] !== '--json') ??
    100,
);
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function cli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}`))));
    child.stdin.end(input ?? '');
  });
}

async function startNode(env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...env, PORT: String(port) },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, child };
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('node did not become ready');
}

function verify(node: string, token: string): Promise<number> {
  return fetch(`${node}/auth/verify`, {
    headers: {
      'X-Original-URI': `/styles/v1/bench/streets?access_token=${token}`,
      'X-Original-Method': 'GET',
    },
  }).then((response) => response.status);
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function trial(
  a: string,
  b: string,
  admin: string,
): Promise<{ revocation: number; roundTrip: number }> {
  const created = await fetch(`${a}/tokens/v2/bench?access_token=${admin}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ note: 'trial', scopes: ['styles:read'] }),
  }).then((response) => response.json() as Promise<{ id: string; token: string }>);
  const warm = performance.now();
  const first = await verify(b, created.token);
  if (first !== 200) throw new Error(`node B answered ${first} for a fresh token`);
  const roundTrip = performance.now() - warm;
  const deleted = await fetch(`${a}/tokens/v2/bench/${created.id}?access_token=${admin}`, {
    method: 'DELETE',
  });
  if (deleted.status !== 204) throw new Error(`delete answered ${deleted.status}`);
  const start = performance.now();
  while ((await verify(b, created.token)) === 200) {
    if (performance.now() - start > 5000) throw new Error('node B kept accepting for 5 s');
  }
  return { revocation: performance.now() - start, roundTrip };
}

const database = await createTemporaryDatabase();
const dirs = [mkdtempSync(join(tmpdir(), 'tessera-a-')), mkdtempSync(join(tmpdir(), 'tessera-b-'))];
// Two Tokens API calls per trial: past Mapbox's default of 100 per minute without a higher limit.
const configFile = join(dirs[0] ?? tmpdir(), 'tessera.json');
writeFileSync(configFile, JSON.stringify({ limits: { tokensApi: { limit: 100_000, interval: 60 } } }));
const base = {
  ...process.env,
  TESSERA_DATABASE_URL: database.url,
  TESSERA_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
  TESSERA_LOG_LEVEL: 'silent',
  TESSERA_CONFIG: configFile,
};
const nodes: ChildProcess[] = [];
try {
  await cli(['migrate'], { ...base, TESSERA_DATA_DIR: dirs[0] });
  await cli(
    ['accounts', 'create', 'bench', '--email', 'bench@example.com', '--password-stdin'],
    { ...base, TESSERA_DATA_DIR: dirs[0] },
    'correct horse battery staple\n',
  );
  const admin = JSON.parse(
    await cli(['tokens', 'create', 'bench', '--scopes', 'tokens:read,tokens:write,styles:read'], {
      ...base,
      TESSERA_DATA_DIR: dirs[0],
    }),
  ).token as string;
  const a = await startNode({ ...base, TESSERA_DATA_DIR: dirs[0] });
  const b = await startNode({ ...base, TESSERA_DATA_DIR: dirs[1] });
  nodes.push(a.child, b.child);
  const revocations: number[] = [];
  const roundTrips: number[] = [];
  for (let index = 0; index < TRIALS; index++) {
    const result = await trial(a.url, b.url, admin);
    revocations.push(result.revocation);
    roundTrips.push(result.roundTrip);
  }
  const show = (values: number[]) =>
    `p50 ${quantile(values, 0.5).toFixed(1)} ms, p99 ${quantile(values, 0.99).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`;
  console.log(`Revocation across two nodes on PostgreSQL (${TRIALS} trials)`);
  console.log(`  delete on A -> refused on B   ${show(revocations)}`);
  console.log(`  baseline: one verify on B     ${show(roundTrips)}`);
  console.log(
    `  ratio p99 / baseline p50      ${(quantile(revocations, 0.99) / quantile(roundTrips, 0.5)).toFixed(1)}x`,
  );
  if (JSON_FILE) {
    const round = (value: number) => Math.round(value * 10) / 10;
    const figures = {
      T67: {
        trials: TRIALS,
        revocationAcrossNodesP50Ms: round(quantile(revocations, 0.5)),
        revocationAcrossNodesP99Ms: round(quantile(revocations, 0.99)),
        revocationAcrossNodesMaxMs: round(Math.max(...revocations)),
        baselineRoundTripP50Ms: round(quantile(roundTrips, 0.5)),
        p99OverBaselineP50: `${(quantile(revocations, 0.99) / quantile(roundTrips, 0.5)).toFixed(1)}x`,
      },
    };
    writeFileSync(JSON_FILE, `${JSON.stringify(figures, null, 2)}\n`);
  }
} finally {
  for (const child of nodes) child.kill();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await database.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
