/**
 * T34: can a stranger tell an unknown username from a wrong password by the time sign-in takes?
 * Starts the real server, takes interleaved samples of both cases and prints medians and their
 * difference; then the same for an unknown token vs a known token id with a wrong secret on
 * `GET /tokens/v2?access_token=`, for comparison.
 *
 * The throttle must not answer instead of the password check: every sample uses its own
 * forwarded client address (the server trusts 127.0.0.1 as a proxy) and no account takes more
 * than 4 failures, so each sample is a full password check, never a 429.
 *
 *   node --import tsx bench/signin-timing.ts [samples]
 */
import { issuePersistentToken } from '../src/core/token-format.ts';
import { systemRandom } from '../src/services/system.ts';
import { DashboardClient } from '../test/helpers/dashboard.ts';
import { createTestAccount, startTestServer } from '../test/helpers/server.ts';

const SAMPLES = Number(process.argv[2] ?? 200);
const FAILURES_PER_ACCOUNT = 4;
const WRONG = 'not the right password at all';

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = sorted[Math.floor(position)] ?? 0;
  const above = sorted[Math.ceil(position)] ?? 0;
  return below + (above - below) * (position - Math.floor(position));
}

const median = (values: readonly number[]): number => quantile(values, 0.5);

function report(label: string, a: [string, number[]], b: [string, number[]]): void {
  const [nameA, samplesA] = a;
  const [nameB, samplesB] = b;
  const medianA = median(samplesA);
  const medianB = median(samplesB);
  console.log(`${label} (${samplesA.length} samples each, interleaved)`);
  // The quartiles show the noise the difference has to be read against (a busy machine adds a lot).
  const line = (name: string, samples: number[], middle: number) =>
    `  ${name.padEnd(22)} median ${middle.toFixed(2)} ms (p25 ${quantile(samples, 0.25).toFixed(2)}, p75 ${quantile(samples, 0.75).toFixed(2)})`;
  console.log(line(nameA, samplesA, medianA));
  console.log(line(nameB, samplesB, medianB));
  console.log(`  |difference|             ${Math.abs(medianA - medianB).toFixed(2)} ms`);
}

/** Times one request; its outcome must be `expected`, or the sample measured something else (a 429, say). */
async function timed(action: () => Promise<string>, expected: string): Promise<number> {
  const started = performance.now();
  const outcome = await action();
  const elapsed = performance.now() - started;
  if (outcome !== expected) throw new Error(`expected ${expected}, got ${outcome}`);
  return elapsed;
}

async function main(): Promise<void> {
  const began = performance.now();
  const server = await startTestServer({ env: { TESSERA_TRUSTED_PROXIES: '127.0.0.1' } });
  try {
    const accounts: string[] = [];
    for (let index = 0; index < Math.ceil(SAMPLES / FAILURES_PER_ACCOUNT); index++) {
      accounts.push((await createTestAccount(server.services, `timing${index}`)).username);
    }
    console.error(`accounts ready after ${(performance.now() - began).toFixed(0)} ms`);
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const signIn = (username: string, sample: number, side: number) => async () => {
      const address = `10.${side}.${sample >> 8}.${sample & 255}`;
      const page = await browser.post(
        '/signin',
        { username, password: WRONG, next: '/account' },
        { headers: { 'x-forwarded-for': address } },
      );
      return String(page.status);
    };
    // Warm up both paths (JIT, the decoy hash, the statement cache) before measuring.
    for (let sample = 0; sample < 5; sample++) {
      await signIn(`warmup-ghost${sample}`, sample, 9)();
    }
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      const account = accounts[Math.floor(sample / FAILURES_PER_ACCOUNT)] as string;
      const cases = [
        async () => unknown.push(await timed(signIn(`ghost${sample}`, sample, 1), '401')),
        async () => wrong.push(await timed(signIn(account, sample, 2), '401')),
      ];
      // Alternate which case goes first, so drift (GC, CPU frequency) hits both alike.
      if (sample % 2) cases.reverse();
      for (const run of cases) await run();
    }
    report('Sign-in: POST /signin', ['unknown username', unknown], ['wrong password', wrong]);

    const owner = await createTestAccount(server.services, 'tokenowner');
    const reader = await server.services.tokens.create({ kind: 'operator' }, owner.username, {
      note: 'reader',
      scopes: ['tokens:read'],
      allowedUrls: null,
      extensions: {},
      rateLimit: null,
      expiresAt: null,
    });
    const retrieve = (token: string) => async () => {
      const response = await fetch(new URL(`/tokens/v2?access_token=${token}`, server.url));
      const body = (await response.json()) as { code?: string };
      return `${response.status} ${body.code}`;
    };
    const unknownToken: number[] = [];
    const wrongSecret: number[] = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      const ghost = issuePersistentToken(
        { usage: 'sk', username: owner.username, tokenId: `c${String(sample).padStart(24, '0')}` },
        systemRandom,
      );
      const forged = issuePersistentToken(
        { usage: 'sk', username: owner.username, tokenId: reader.id },
        systemRandom,
      );
      const cases = [
        async () => unknownToken.push(await timed(retrieve(ghost), '200 TokenInvalid')),
        async () => wrongSecret.push(await timed(retrieve(forged), '200 TokenInvalid')),
      ];
      if (sample % 2) cases.reverse();
      for (const run of cases) await run();
    }
    report('Token retrieve: GET /tokens/v2', ['unknown token', unknownToken], ['wrong secret', wrongSecret]);
  } finally {
    await server.close();
  }
}

await main();
