/**
 * In-process verification against its baselines, measured in the same run:
 *   - jose HS256 jwtVerify with a pre-imported key (the stateless JWT one might pick instead);
 *   - one createHmac('sha256') over the token plus a Map.get (the floor of any signed-token check).
 * Tessera's figure is a cached public token with a scope check and an allowedUrls check.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { UsageRecorder } from '../src/services/usage-recorder.ts';
import { compare, fixture, format, median, syncOpsPerSecond } from './common.ts';

const bench = await fixture();
const { services, restrictedToken } = bench;
const request = { token: restrictedToken, scope: 'styles:read', origin: 'https://app.example.com' };
const first = await services.verification.verify(request);
if (!first.decision.allowed)
  throw new Error(`the benchmark token is refused: ${JSON.stringify(first.decision)}`);

const key = randomBytes(32);
const jwt = await new SignJWT({ scopes: ['styles:read'] })
  .setProtectedHeader({ alg: 'HS256' })
  .setIssuedAt()
  .setExpirationTime('1h')
  .sign(key);
const table = new Map([[restrictedToken, { username: 'bench' }]]);

const rates = await compare({
  jose: () => jwtVerify(jwt, key, { algorithms: ['HS256'] }),
  hmac: () => {
    createHmac('sha256', key).update(restrictedToken).digest();
    return table.get(restrictedToken);
  },
  tessera: () => services.verification.verify(request),
});
const joseRate = rates['jose'] as number;
const hmacRate = rates['hmac'] as number;
const tesseraRate = rates['tessera'] as number;

// Usage counting, measured on its own against one whole cached verification (an A/B of verification
// with and without counting differs by less than this machine's noise). Both run in a plain loop: a
// cached verification completes synchronously (the promise it returns is already settled). The
// loop's own cost per call, an empty function through the same loop, is taken off both. The count
// is handed the time, as the verification hands it the time it already read.
const counter = new UsageRecorder(services.store);
const now = Date.now();
const countOnce = (): void => counter.record('bench', 'ctokenid000000000000000000', 'styles', 'allowed', now);
const perCall = (work: () => unknown): number =>
  1e9 / median([0, 1, 2, 3, 4].map(() => syncOpsPerSecond(work)));
const loopNs = perCall(() => undefined);
const countNs = Math.max(0, perCall(countOnce) - loopNs);
const verifyNs = perCall(() => services.verification.verify(request)) - loopNs;

const heap = await cachedTokenMemory();

console.log('in-process verification (ops/s, median of 7 interleaved rounds, same run)');
console.log(`  jose HS256 jwtVerify            ${format(joseRate)}`);
console.log(`  createHmac + Map.get            ${format(hmacRate)}`);
console.log(`  tessera cached pk, scope + URL  ${format(tesseraRate)}`);
console.log(`  one cached verification         ${verifyNs.toFixed(0)} ns (plain loop, loop cost taken off)`);
console.log(`  one usage count                 ${countNs.toFixed(0)} ns (same)`);
console.log(`ratios`);
console.log(`  tessera / jose        ${(tesseraRate / joseRate).toFixed(2)}x   (target >= 10x)`);
console.log(`  tessera / hmac+map    ${(tesseraRate / hmacRate).toFixed(2)}x   (target >= 1.00x)`);
console.log(
  `  usage counting cost   ${((countNs / verifyNs) * 100).toFixed(1)}% of a cached verification   (target < 10%)`,
);
console.log(`memory per cached token  ~${format(heap)} bytes`);
await bench.close();

/** Heap growth per verdict in the cache, over 5,000 distinct tokens. */
async function cachedTokenMemory(): Promise<number> {
  const tokens: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const created = await services.tokens.create({ kind: 'operator' }, 'bench', {
      note: `t${i}`,
      scopes: ['styles:read'],
      allowedUrls: ['https://app.example.com'],
      extensions: {},
      rateLimit: null,
      expiresAt: null,
    });
    tokens.push(created.token ?? '');
  }
  services.cache.clear();
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (const token of tokens) await services.tokens.inspect(token);
  global.gc?.();
  return (process.memoryUsage().heapUsed - before) / tokens.length;
}
