/**
 * T70: does a flood of 200 concurrent wrong-password sign-ins slow token verification down?
 *
 * Three processes: the server (bench/servers/timing.ts, from the sources, trusting 127.0.0.1 as a
 * proxy so that a flood can come from many client addresses), the flood (bench/servers/
 * sign-in-flooder.ts) and this one, which asks forward-auth to verify a cached public token at a
 * steady 500 requests/s (open loop, at most 64 connections; time queued for one counts) and times
 * the answers. Rounds alternate between quiet (the in-run baseline) and each flood of `FLOODS`, one
 * of which is a control doing no password work: it tells the share of Argon2 from that of the HTTP
 * flood itself. The plan's budget is a verification p99 under 50 ms; a request unanswered after
 * 5 s counts as timed out.
 *
 *   node --import tsx bench/signin-flood.ts [--json <file>] [--rounds <n>]
 *
 * Without `--json`, `BENCH_JSON` names the file (as for the other timing benchmarks).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { FLOOD, FLOODS, type FloodKind } from './servers/sign-in-flooder.ts';
import { type Answer, type Figure, ms, quantile, send, sleep, writeFigures } from './timing.ts';

const VERIFY_RATE = 500;
const PHASE_MS = 3000;
const RAMP_MS = 300;
const BUDGET_MS = 50;

function options(argv: readonly string[]): { json: string | undefined; rounds: number } {
  const json = argv.includes('--json')
    ? argv[argv.indexOf('--json') + 1]
    : process.env['BENCH_JSON'] || undefined;
  const rounds = argv.includes('--rounds') ? Number(argv[argv.indexOf('--rounds') + 1]) : 3;
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new TypeError('--rounds must be at least 1');
  return { json, rounds };
}

/** Runs a script of bench/servers, from the TypeScript sources. */
function spawnScript(script: string, args: readonly string[]): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'servers', script), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  // However this script ends, its children go with it.
  const stop = () => child.kill('SIGTERM');
  process.once('exit', stop);
  child.once('exit', () => process.off('exit', stop));
  return child;
}

/** The first capture of `pattern` in what the child prints. */
function lineOf(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk) => {
      buffered += chunk;
      const match = pattern.exec(buffered);
      if (match) resolve(match[1] ?? '');
    });
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.at(-1)} exited with ${code}`)));
  });
}

/** Open loop: requests leave on schedule whether or not earlier ones have answered. */
async function verifyAtRate(url: string, token: string, durationMs: number): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const pending: Promise<Answer>[] = [];
  const headers = { authorization: `Bearer ${token}` };
  const started = performance.now();
  const total = Math.round((VERIFY_RATE * durationMs) / 1000);
  while (pending.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * VERIFY_RATE) / 1000) + 1);
    while (pending.length < due)
      pending.push(send(agent, `${url}/auth/verify?scope=styles:read`, { headers }));
    await sleep(1);
  }
  const answers = await Promise.all(pending);
  // A fresh agent per phase: no socket idle past the server's keep-alive timeout is reused.
  agent.destroy();
  return answers;
}

type SignIns = Record<string, { count: number; medianMs: number }>;

async function flooded(url: string, token: string, kind: FloodKind, round: number) {
  const flooder = spawnScript('sign-in-flooder.ts', [url, kind, String(round), String(RAMP_MS + PHASE_MS)]);
  const result = lineOf(flooder, /RESULT (.*)\n/);
  await lineOf(flooder, /(READY)\n/);
  await sleep(RAMP_MS);
  const verifications = await verifyAtRate(url, token, PHASE_MS);
  return { verifications, signIns: JSON.parse(await result) as SignIns };
}

function latencyFigures(label: string, answers: readonly Answer[], quiet: readonly Answer[]) {
  const p99 = (of: readonly Answer[]) =>
    quantile(
      of.map((answer) => answer.ms),
      0.99,
    );
  const figures: Record<string, Figure> = {
    [`${label}: verifications`]: answers.length,
    [`${label}: p50 ms`]: ms(
      quantile(
        answers.map((answer) => answer.ms),
        0.5,
      ),
    ),
    [`${label}: p99 ms`]: ms(p99(answers)),
    [`${label}: 5xx`]: answers.filter((answer) => answer.status >= 500).length,
    [`${label}: timed out (5 s)`]: answers.filter((answer) => answer.body === 'timed out').length,
    [`${label}: other failures`]: answers.filter((a) => a.status !== 200 && a.body !== 'timed out').length,
  };
  if (answers !== quiet) {
    figures[`${label}: p99 / quiet p99`] = Math.round((p99(answers) / p99(quiet)) * 10) / 10;
    figures[`${label}: p99 within budget`] = p99(answers) < BUDGET_MS ? 'yes' : 'no';
  }
  return figures;
}

function signInFigures(label: string, rounds: readonly SignIns[]): Record<string, Figure> {
  const figures: Record<string, Figure> = {};
  const statuses = new Set(rounds.flatMap((round) => Object.keys(round)));
  for (const status of [...statuses].sort()) {
    const seen = rounds.map((round) => round[status]).filter((entry) => entry !== undefined);
    figures[`${label}: sign-ins ${status === '0' ? 'unanswered' : status}`] = seen.reduce(
      (n, e) => n + e.count,
      0,
    );
    figures[`${label}: sign-ins ${status === '0' ? 'unanswered' : status} median ms`] = ms(
      quantile(
        seen.map((entry) => entry.medianMs),
        0.5,
      ),
    );
  }
  return figures;
}

async function main(): Promise<void> {
  const { json, rounds } = options(process.argv.slice(2));
  const server = spawnScript('timing.ts', []);
  const [port, token = ''] = (await lineOf(server, /READY (.*)\n/)).split(' ');
  const url = `http://127.0.0.1:${port}`;
  const quiet: Answer[] = [];
  const loud = new Map<FloodKind, { verifications: Answer[]; signIns: SignIns[] }>();
  try {
    await verifyAtRate(url, token, 500);
    for (let round = 0; round < rounds; round++) {
      quiet.push(...(await verifyAtRate(url, token, PHASE_MS)));
      for (const kind of Object.keys(FLOODS) as FloodKind[]) {
        const phase = await flooded(url, token, kind, round);
        const kept = loud.get(kind) ?? { verifications: [], signIns: [] };
        kept.verifications.push(...phase.verifications);
        kept.signIns.push(phase.signIns);
        loud.set(kind, kept);
      }
    }
  } finally {
    server.kill('SIGTERM');
  }
  const figures: Record<string, Figure> = {
    'verifications/s asked': VERIFY_RATE,
    'concurrent wrong sign-ins': FLOOD,
    rounds,
    'phase s': PHASE_MS / 1000,
    'budget ms': BUDGET_MS,
    ...latencyFigures('quiet', quiet, quiet),
  };
  for (const [kind, { verifications, signIns }] of loud) {
    Object.assign(
      figures,
      latencyFigures(`flood ${kind}`, verifications, quiet),
      signInFigures(`flood ${kind}`, signIns),
    );
  }
  console.log(
    `T70 forward-auth at ${VERIFY_RATE}/s, quiet vs ${FLOOD} concurrent wrong sign-ins (${rounds} rounds)`,
  );
  for (const [name, value] of Object.entries(figures)) console.log(`  ${name.padEnd(48)} ${value}`);
  writeFigures(json, { T70: figures });
}

await main();
