/**
 * GET /auth/verify over HTTP against its baselines, measured in the same run with the same load
 * generator (autocannon, 50 connections): a bare node:http server answering 204, and a hand-rolled
 * Express + SELECT-per-request verifier. Each server runs in its own process.
 * BENCH_SECONDS (default 5) sets the duration of each measurement.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { format } from './common.ts';

interface Result {
  readonly requests: { readonly average: number };
  readonly latency: { readonly p99: number; readonly average: number };
  readonly non2xx: number;
  readonly errors: number;
}

const autocannon = createRequire(import.meta.url)('autocannon') as (options: object) => Promise<Result>;
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 50;

async function start(name: string): Promise<{ child: ChildProcess; port: number; token: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'servers', `${name}.ts`)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk) => {
      buffered += chunk;
      const ready = /READY (.*)\n/.exec(buffered);
      if (ready) resolve(ready[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  const [port, token] = line.split(' ');
  return { child, port: Number(port), token: token ?? '' };
}

async function load(port: number, path: string, headers: Record<string, string>): Promise<Result> {
  const url = `http://127.0.0.1:${port}${path}`;
  await autocannon({ url, headers, connections: CONNECTIONS, duration: 1 });
  return autocannon({ url, headers, connections: CONNECTIONS, duration: seconds });
}

async function measure(
  name: string,
  request: (token: string) => { path: string; headers: Record<string, string> },
): Promise<Result> {
  const server = await start(name);
  try {
    const { path, headers } = request(server.token);
    const result = await load(server.port, path, headers);
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`${name}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    return result;
  } finally {
    server.child.kill('SIGTERM');
  }
}

const bare = await measure('bare', () => ({ path: '/', headers: {} }));
const nginxStyle = (token: string) => ({
  path: '/auth/verify?scope=styles:read',
  headers: {
    'X-Original-URI': `/styles/v1/bench/streets?access_token=${token}`,
    'X-Original-Method': 'GET',
    Origin: 'https://app.example.com',
  },
});
const tessera = await measure('tessera', nginxStyle);
const handrolled = await measure('handrolled', nginxStyle);

console.log(
  `GET /auth/verify over HTTP (autocannon, ${CONNECTIONS} connections, ${seconds} s each, same run)`,
);
for (const [name, result] of [
  ['bare node:http 204', bare],
  ['tessera /auth/verify', tessera],
  ['hand-rolled express + SELECT', handrolled],
] as const) {
  console.log(
    `  ${name.padEnd(30)} ${format(result.requests.average).padStart(8)} req/s   p99 ${result.latency.p99} ms`,
  );
}
console.log('ratios');
console.log(
  `  tessera / bare node:http   ${(tessera.requests.average / bare.requests.average).toFixed(2)}x   (target >= 0.60x)`,
);
console.log(
  `  tessera / hand-rolled      ${(tessera.requests.average / handrolled.requests.average).toFixed(2)}x`,
);
console.log(`  tessera p99                ${tessera.latency.p99} ms   (target < 10 ms)`);
