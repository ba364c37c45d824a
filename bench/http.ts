/**
 * GET /auth/verify over HTTP against its baselines, measured in the same run with the same load
 * generator (autocannon, 50 connections): a bare node:http server answering 204, and a hand-rolled
 * Express + SELECT-per-request verifier. Each server runs in its own process; all three run at
 * once and the load alternates between them in rounds, each keeping its median round, so drift on a
 * shared machine hits every contender alike. Tessera runs from dist/ (`npm run build`), as
 * `npm start` runs it. BENCH_SECONDS (default 5) sets the length of a round.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createTemporaryDatabase, postgresSkipReason } from '../test/helpers/postgres.ts';
import { format } from './common.ts';

interface Result {
  readonly requests: { readonly average: number };
  readonly latency: { readonly p99: number; readonly average: number };
  readonly non2xx: number;
  readonly errors: number;
}

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly token: string;
}

type Request = { readonly path: string; readonly headers: Record<string, string> };

const autocannon = createRequire(import.meta.url)('autocannon') as (options: object) => Promise<Result>;
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 50;
const ROUNDS = 3;

const nginxStyle = (token: string): Request => ({
  path: '/auth/verify?scope=styles:read',
  headers: {
    'X-Original-URI': `/styles/v1/bench/streets?access_token=${token}`,
    'X-Original-Method': 'GET',
    Origin: 'https://app.example.com',
  },
});

interface Contender {
  readonly name: string;
  readonly script: string;
  readonly label: string;
  readonly request: (token: string) => Request;
  readonly env?: Readonly<Record<string, string>>;
}

// Tessera on PostgreSQL joins when a PostgreSQL is reachable (its own database, dropped after).
const postgres = (await postgresSkipReason()) ? undefined : await createTemporaryDatabase();

const CONTENDERS: readonly Contender[] = [
  { name: 'bare', script: 'bare', label: 'bare node:http 204', request: () => ({ path: '/', headers: {} }) },
  { name: 'tessera', script: 'tessera', label: 'tessera /auth/verify', request: nginxStyle },
  { name: 'handrolled', script: 'handrolled', label: 'hand-rolled express + SELECT', request: nginxStyle },
  ...(postgres
    ? [
        {
          name: 'tessera-pg',
          script: 'tessera',
          label: 'tessera on PostgreSQL',
          request: nginxStyle,
          env: { TESSERA_BENCH_DATABASE_URL: postgres.url },
        },
      ]
    : []),
];

async function start(contender: Contender): Promise<Running> {
  const { name } = contender;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'servers', `${contender.script}.ts`)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...contender.env },
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

function load(server: Running, request: Request, duration: number): Promise<Result> {
  const url = `http://127.0.0.1:${server.port}${request.path}`;
  return autocannon({ url, headers: request.headers, connections: CONNECTIONS, duration });
}

function median(rounds: readonly Result[]): Result {
  const sorted = [...rounds].sort((a, b) => a.requests.average - b.requests.average);
  return sorted[Math.floor(sorted.length / 2)] as Result;
}

const servers = await Promise.all(CONTENDERS.map((contender) => start(contender)));
const rounds = new Map<string, Result[]>(CONTENDERS.map((contender) => [contender.name, []]));
try {
  for (const [index, contender] of CONTENDERS.entries()) {
    const server = servers[index] as Running;
    await load(server, contender.request(server.token), 1);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, contender] of CONTENDERS.entries()) {
      const server = servers[index] as Running;
      const result = await load(server, contender.request(server.token), seconds);
      if (result.non2xx > 0 || result.errors > 0) {
        throw new Error(`${contender.name}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
      }
      rounds.get(contender.name)?.push(result);
    }
  }
} finally {
  for (const server of servers) server.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 500));
  await postgres?.drop();
}

const result = (name: string): Result => median(rounds.get(name) ?? []);
console.log(
  `GET /auth/verify over HTTP (autocannon, ${CONNECTIONS} connections, median of ${ROUNDS} interleaved ${seconds} s rounds)`,
);
for (const contender of CONTENDERS) {
  const { requests, latency } = result(contender.name);
  console.log(
    `  ${contender.label.padEnd(30)} ${format(requests.average).padStart(8)} req/s   p99 ${latency.p99} ms`,
  );
}
const tessera = result('tessera');
console.log('ratios');
console.log(
  `  tessera / bare node:http   ${(tessera.requests.average / result('bare').requests.average).toFixed(2)}x   (target >= 0.60x)`,
);
console.log(
  `  tessera / hand-rolled      ${(tessera.requests.average / result('handrolled').requests.average).toFixed(2)}x`,
);
console.log(`  tessera p99                ${tessera.latency.p99} ms   (target < 10 ms)`);
if (postgres) {
  const pg = result('tessera-pg');
  console.log(
    `  PostgreSQL / SQLite        ${(pg.requests.average / tessera.requests.average).toFixed(2)}x   (target >= 0.90x, caches warm)`,
  );
} else {
  console.log('  PostgreSQL / SQLite        not measured: no PostgreSQL reachable');
}
