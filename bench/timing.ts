/**
 * Shared parts of the timing benchmarks (bench/signin-timing.ts, bench/token-timing.ts): arguments,
 * interleaved sampling, medians and the `--json <file>` output that a report script collects.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';

export type Figure = number | string;
/** `{ row: { figure: value } }`, rows named after the security plan's checklist (T05, T34, ...). */
export type Figures = Record<string, Record<string, Figure>>;

export interface BenchArgs {
  /** Where to write the figures as JSON; rows already in the file are kept unless measured again. */
  readonly json: string | undefined;
  /** Overrides the sample counts, for a quick run. */
  readonly samples: number | undefined;
}

/** `[--json <file>] [--samples <n> | <n>]`; without `--json`, `BENCH_JSON` names the file (for `npm run bench:timing`). */
export function benchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  let json = process.env['BENCH_JSON'] || undefined;
  let samples: number | undefined;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (arg === '--json') json = argv[++index];
    else if (arg === '--samples') samples = Number(argv[++index]);
    else if (/^\d+$/.test(arg)) samples = Number(arg);
    else throw new TypeError(`unknown argument ${arg}: expected [--json <file>] [--samples <n>]`);
  }
  if (argv.includes('--json') && !argv[argv.indexOf('--json') + 1])
    throw new TypeError('--json needs a file name');
  if (samples !== undefined && !(Number.isSafeInteger(samples) && samples >= 10)) {
    throw new TypeError('--samples must be a whole number of at least 10');
  }
  return { json, samples };
}

export function writeFigures(file: string | undefined, figures: Figures): void {
  if (!file) return;
  let previous: Figures = {};
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')) as Figures;
  } catch {
    // a new file
  }
  writeFileSync(file, `${JSON.stringify({ ...previous, ...figures }, null, 2)}\n`);
  console.log(`figures written to ${file}`);
}

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = sorted[Math.floor(position)] ?? 0;
  const above = sorted[Math.ceil(position)] ?? 0;
  return below + (above - below) * (position - Math.floor(position));
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Milliseconds, rounded to microseconds for the JSON. */
export const ms = (value: number): number => Math.round(value * 1000) / 1000;

export interface Case {
  readonly name: string;
  /** What every sample must answer, or it measured something else (a 429, a 503). */
  readonly expected: string;
  run(sample: number): Promise<string>;
}

/**
 * Takes `samples` of every case, one round at a time, each round starting with the next case in
 * turn, so that drift on a shared machine (GC, CPU frequency, other work) hits every case alike.
 */
export async function interleaved(
  cases: readonly Case[],
  samples: number,
  options: { readonly warmup?: number } = {},
): Promise<Map<string, number[]>> {
  const times = new Map<string, number[]>(cases.map((one) => [one.name, []]));
  const warmup = options.warmup ?? 20;
  for (let sample = -warmup; sample < samples; sample++) {
    for (let turn = 0; turn < cases.length; turn++) {
      const one = cases[(turn + Math.abs(sample)) % cases.length] as Case;
      const started = performance.now();
      const outcome = await one.run(sample);
      const elapsed = performance.now() - started;
      if (outcome !== one.expected) throw new Error(`${one.name}: expected ${one.expected}, got ${outcome}`);
      if (sample >= 0) times.get(one.name)?.push(elapsed);
    }
  }
  return times;
}

/** The noise a median difference is read against: the same case, even samples vs odd samples. */
export function noiseFloor(samples: readonly number[]): number {
  const even = samples.filter((_, index) => index % 2 === 0);
  const odd = samples.filter((_, index) => index % 2 === 1);
  return Math.abs(median(even) - median(odd));
}

export interface Comparison {
  readonly medians: Readonly<Record<string, number>>;
  /** Largest |median difference| between `reference` and any other case. */
  readonly difference: number;
  /** Largest even/odd noise floor of the cases compared. */
  readonly noise: number;
  readonly baseline: number;
}

/**
 * Prints each case's median against the in-run baseline (a request on the same route and client
 * that does no credential work) and the largest |median difference| from `reference` against the
 * plan's bound.
 */
export function compare(
  title: string,
  times: ReadonlyMap<string, readonly number[]>,
  options: { readonly reference: string; readonly baseline: string; readonly boundMs: number },
): Comparison {
  const samplesOf = (name: string): readonly number[] => times.get(name) ?? [];
  const baseline = median(samplesOf(options.baseline));
  const reference = median(samplesOf(options.reference));
  const compared = [...times.keys()].filter((name) => name !== options.baseline);
  console.log(`${title} (${samplesOf(options.reference).length} interleaved samples each)`);
  const medians: Record<string, number> = {};
  let difference = 0;
  let noise = 0;
  for (const name of [...compared, options.baseline]) {
    const samples = samplesOf(name);
    const middle = median(samples);
    medians[name] = middle;
    const spread = `p25 ${quantile(samples, 0.25).toFixed(3)}, p75 ${quantile(samples, 0.75).toFixed(3)}`;
    const ratio = name === options.baseline ? 'baseline' : `${(middle / baseline).toFixed(2)}x baseline`;
    console.log(`  ${name.padEnd(34)} median ${middle.toFixed(3)} ms (${spread})  ${ratio}`);
    if (name === options.baseline) continue;
    difference = Math.max(difference, Math.abs(middle - reference));
    noise = Math.max(noise, noiseFloor(samples));
  }
  const verdict = difference < options.boundMs ? 'within the bound' : 'ABOVE THE BOUND';
  console.log(
    `  |median difference| from ${options.reference}: ${difference.toFixed(3)} ms; bound ${options.boundMs} ms ` +
      `(${((difference / options.boundMs) * 100).toFixed(1)}% of it); noise floor ${noise.toFixed(3)} ms: ${verdict}`,
  );
  return { medians, difference, noise, baseline };
}

/** The JSON figures of one comparison, each key prefixed with `label`. */
export function comparisonFigures(
  label: string,
  comparison: Comparison,
  boundMs: number,
): Record<string, Figure> {
  const figures: Record<string, Figure> = {};
  for (const [name, value] of Object.entries(comparison.medians)) {
    figures[`${label}: ${name} median ms`] = ms(value);
    if (value === comparison.baseline) continue;
    figures[`${label}: ${name} / baseline`] = Math.round((value / comparison.baseline) * 100) / 100;
  }
  figures[`${label}: |median diff| ms`] = ms(comparison.difference);
  figures[`${label}: |median diff| / bound`] = Math.round((comparison.difference / boundMs) * 1000) / 1000;
  figures[`${label}: noise floor ms`] = ms(comparison.noise);
  figures[`${label}: within bound`] = comparison.difference < boundMs ? 'yes' : 'no';
  return figures;
}

// Plain HTTP for the load benchmarks ------------------------------------------------------------

export interface Answer {
  /** 0: no answer within the plan's request timeout, or the connection failed (see `body`). */
  readonly status: number;
  readonly ms: number;
  readonly cookies: readonly string[];
  readonly body: string;
}

/** The plan's request timeout: a request unanswered after it counts as `timed out`. */
export const REQUEST_TIMEOUT_MS = 5000;

export function send(
  agent: Agent,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    // Counted from the moment the request is asked for, time in the agent's queue included.
    const timer = setTimeout(() => req.destroy(new Error('timed out')), REQUEST_TIMEOUT_MS);
    const req = request(url, { agent, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          ms: performance.now() - started,
          cookies: res.headers['set-cookie'] ?? [],
          body,
        });
      });
    });
    // A refused connection, a reset or a timeout is an answer too, counted, not a crash.
    req.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: 0, ms: performance.now() - started, cookies: [], body: error.message });
    });
    req.end(options.body);
  });
}

export const sleep = (milliseconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, milliseconds));
