/**
 * T34: can a stranger tell an unknown username from a wrong password by the time sign-in takes?
 * Starts the real server and takes interleaved samples of both, against an in-run baseline: a
 * sign-in post without its form token, refused before any password work. The plan's bound is 5 ms
 * of |median difference|.
 *
 * The throttle must not answer instead of the password check: every sample uses its own forwarded
 * client address (the server trusts 127.0.0.1 as a proxy) and no account takes more than 4
 * failures, so each sample is a full password check, never a 429.
 *
 * T70 (verification under a sign-in flood) is bench/signin-flood.ts.
 *
 *   node --import tsx bench/signin-timing.ts [--json <file>] [--samples <n>]
 */
import { DashboardClient } from '../test/helpers/dashboard.ts';
import { createTestAccount, startTestServer } from '../test/helpers/server.ts';
import { benchArgs, compare, comparisonFigures, type Figure, interleaved, writeFigures } from './timing.ts';

const args = benchArgs();
const SAMPLES = args.samples ?? 200;
const WARMUP = 5;
const FAILURES_PER_ACCOUNT = 4;
const WRONG = 'not the right password at all';
const T34_BOUND_MS = 5;

async function signInTiming(): Promise<Record<string, Figure>> {
  const began = performance.now();
  const server = await startTestServer({ env: { TESSERA_TRUSTED_PROXIES: '127.0.0.1' } });
  try {
    const accounts: string[] = [];
    for (let index = 0; index < Math.ceil((SAMPLES + WARMUP) / FAILURES_PER_ACCOUNT); index++) {
      accounts.push((await createTestAccount(server.services, `timing${index}`)).username);
    }
    console.error(`accounts ready after ${(performance.now() - began).toFixed(0)} ms`);
    const browser = new DashboardClient(server);
    await browser.get('/signin');
    const signIn = async (username: string, sample: number, side: number, csrf?: null): Promise<string> => {
      const index = sample + WARMUP;
      const headers = { 'x-forwarded-for': `10.${side}.${index >> 8}.${index & 255}` };
      const form = { username, password: WRONG, next: '/account' };
      const page = await browser.post('/signin', form, { headers, ...(csrf === null ? { csrf } : {}) });
      return String(page.status);
    };
    const times = await interleaved(
      [
        { name: 'unknown username', expected: '401', run: (sample) => signIn(`ghost${sample}`, sample, 1) },
        {
          name: 'wrong password',
          expected: '401',
          run: (sample) => {
            const account = accounts[Math.floor((sample + WARMUP) / FAILURES_PER_ACCOUNT)] as string;
            return signIn(account, sample, 2);
          },
        },
        {
          name: 'baseline: no form token',
          expected: '403',
          run: (sample) => signIn(`ghost${sample}`, sample, 3, null),
        },
      ],
      SAMPLES,
      { warmup: WARMUP },
    );
    const comparison = compare('T34 sign-in: POST /signin', times, {
      reference: 'unknown username',
      baseline: 'baseline: no form token',
      boundMs: T34_BOUND_MS,
    });
    return {
      samples: SAMPLES,
      'bound ms': T34_BOUND_MS,
      ...comparisonFigures('sign-in', comparison, T34_BOUND_MS),
    };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  writeFigures(args.json, { T34: await signInTiming() });
}

await main();
