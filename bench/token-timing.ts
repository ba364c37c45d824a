/**
 * T05 / T06: can a caller tell tokens apart by how long they take to refuse?
 *
 * T06: a random well-formed unknown token (valid checksum, the owner's username, a fresh id) vs a
 * token carrying the id and payload of a live token with a wrong secret: both reach the store, and
 * the stored SHA-256 digest is compared in constant time either way.
 * T05: unknown vs revoked vs expired vs malformed.
 *
 * Each through forward-auth (`GET /auth/verify`), the Tokens API (`GET /tokens/v2?access_token=`,
 * which inspects, and `GET /tokens/v2/{username}`, which authenticates) and the in-process verifier,
 * against an in-run baseline: the same route and client with no token at all (no credential work).
 * The plan's bound is 1 ms of |median difference|. Only valid verdicts are cached, so every refused
 * sample is decided afresh.
 *
 *   node --import tsx bench/token-timing.ts [--json <file>] [--samples <n>]
 *
 * `--samples n` sets the T06 samples (default 2,000) and T05 gets a quarter of them (default 500).
 */
import { Agent, request } from 'node:http';
import { encodeBase62 } from '../src/core/base62.ts';
import { newTokenId } from '../src/core/identifiers.ts';
import { issuePersistentToken } from '../src/core/token-format.ts';
import { isoTime } from '../src/core/tokens.ts';
import { systemRandom } from '../src/services/system.ts';
import { createTestAccount, ManualClock, startTestServer, type TestServer } from '../test/helpers/server.ts';
import {
  benchArgs,
  type Case,
  type Comparison,
  compare,
  comparisonFigures,
  type Figure,
  interleaved,
  writeFigures,
} from './timing.ts';

const args = benchArgs();
const T06_SAMPLES = args.samples ?? 2000;
const T05_SAMPLES = Math.max(10, Math.round(T06_SAMPLES / 4));
const BOUND_MS = 1;
const WARMUP = 50;
const USERNAME = 'timing';
const SCOPE = 'styles:read';
/** Revoked and expired tokens are cycled through; fresh ones per sample would cost nothing more. */
const POOL = 50;

// One socket, kept alive: every sample pays the same connection cost (none).
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(server: TestServer, path: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, server.url), { agent, headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(String(response.statusCode)));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Pools {
  readonly live: string;
  readonly revoked: readonly string[];
  readonly expired: readonly string[];
}

function newPkRequest(expiresAt: string | null) {
  return { note: 'timing', scopes: [SCOPE], allowedUrls: null, extensions: {}, rateLimit: null, expiresAt };
}

async function createPools(server: TestServer, clock: ManualClock): Promise<Pools> {
  const { tokens } = server.services;
  const operator = { kind: 'operator' } as const;
  const live = await tokens.create(operator, USERNAME, newPkRequest(null));
  const revoked: string[] = [];
  const expired: string[] = [];
  for (let index = 0; index < POOL; index++) {
    const doomed = await tokens.create(operator, USERNAME, newPkRequest(null));
    await tokens.remove(operator, USERNAME, doomed.id);
    revoked.push(doomed.token ?? '');
    const expiring = await tokens.create(operator, USERNAME, newPkRequest(isoTime(clock.now() + 3_600_000)));
    expired.push(expiring.token ?? '');
  }
  clock.advance(2 * 3_600_000);
  return { live: live.id, revoked, expired };
}

/** Fresh tokens per sample, made before the clock starts. */
function freshTokens(count: number, make: () => string): (sample: number) => string {
  const made = Array.from({ length: count + WARMUP }, make);
  return (sample) => made[sample + WARMUP] as string;
}

const unknownToken = () =>
  issuePersistentToken({ usage: 'pk', username: USERNAME, tokenId: newTokenId(systemRandom) }, systemRandom);

/** The shape of a token (three parts, base62 where it should be) but a payload that does not decode. */
const malformedToken = () => {
  const real = unknownToken();
  const [, payload = '', secret = ''] = real.split('.');
  const garbage = encodeBase62(systemRandom.bytes(64)).slice(0, payload.length);
  return `pk.${garbage}.${secret}`;
};

interface Route {
  readonly label: string;
  /** What a refused token answers here. */
  readonly refused: string;
  send(token: string | undefined): Promise<string>;
}

function routes(server: TestServer): readonly Route[] {
  const verification = server.services.verification;
  const query = (token: string | undefined) => (token ? `?access_token=${token}` : '');
  return [
    {
      label: 'forward-auth',
      refused: '401',
      send: (token) =>
        get(server, `/auth/verify?scope=${SCOPE}`, token ? { authorization: `Bearer ${token}` } : {}),
    },
    {
      label: 'Tokens API retrieve',
      refused: '200',
      send: (token) => get(server, `/tokens/v2${query(token)}`),
    },
    {
      label: 'Tokens API list',
      refused: '401',
      send: (token) => get(server, `/tokens/v2/${USERNAME}${query(token)}`),
    },
    {
      label: 'in-process verifier',
      refused: '401',
      send: async (token) => {
        const { decision } = await verification.verify({ token, scope: SCOPE });
        return decision.allowed ? '200' : String(decision.status);
      },
    },
  ];
}

/** The cases, then the baseline: the same request with no token, whatever the route answers to that. */
function casesFor(
  route: Route,
  tokens: Readonly<Record<string, (sample: number) => string>>,
  missing: string,
): Case[] {
  const cases: Case[] = Object.entries(tokens).map(([name, tokenOf]) => ({
    name,
    expected: route.refused,
    run: (sample) => route.send(tokenOf(sample)),
  }));
  return [...cases, { name: 'baseline: no token', expected: missing, run: () => route.send(undefined) }];
}

async function measure(
  row: string,
  samples: number,
  tokens: (route: Route) => Readonly<Record<string, (sample: number) => string>>,
  server: TestServer,
): Promise<Record<string, Figure>> {
  const figures: Record<string, Figure> = { samples, 'bound ms': BOUND_MS };
  let worst: Comparison | undefined;
  for (const route of routes(server)) {
    const cases = casesFor(route, tokens(route), await route.send(undefined));
    const times = await interleaved(cases, samples, { warmup: WARMUP });
    const reference = cases[0]?.name ?? '';
    const comparison = compare(`${row} ${route.label}`, times, {
      reference,
      baseline: 'baseline: no token',
      boundMs: BOUND_MS,
    });
    Object.assign(figures, comparisonFigures(route.label, comparison, BOUND_MS));
    if (!worst || comparison.difference > worst.difference) worst = comparison;
  }
  figures['worst |median diff| ms'] = Math.round((worst?.difference ?? 0) * 1000) / 1000;
  figures['within bound on every path'] = (worst?.difference ?? 0) < BOUND_MS ? 'yes' : 'no';
  return figures;
}

async function main(): Promise<void> {
  const clock = new ManualClock();
  const server = await startTestServer({ clock });
  try {
    await createTestAccount(server.services, USERNAME);
    const pools = await createPools(server, clock);
    const wrongSecret = () =>
      issuePersistentToken({ usage: 'pk', username: USERNAME, tokenId: pools.live }, systemRandom);
    const t06 = await measure(
      'T06',
      T06_SAMPLES,
      () => ({
        'unknown token': freshTokens(T06_SAMPLES, unknownToken),
        'wrong secret for a live id': freshTokens(T06_SAMPLES, wrongSecret),
      }),
      server,
    );
    const cycle = (pool: readonly string[]) => (sample: number) =>
      pool[(sample + WARMUP) % pool.length] as string;
    const t05 = await measure(
      'T05',
      T05_SAMPLES,
      () => ({
        unknown: freshTokens(T05_SAMPLES, unknownToken),
        revoked: cycle(pools.revoked),
        expired: cycle(pools.expired),
        malformed: freshTokens(T05_SAMPLES, malformedToken),
      }),
      server,
    );
    writeFigures(args.json, { T05: t05, T06: t06 });
  } finally {
    agent.destroy();
    await server.close();
  }
}

await main();
