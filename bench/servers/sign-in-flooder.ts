/**
 * The sign-in flood of bench/signin-flood.ts, in a process of its own so that answering it does not
 * slow down the process measuring verification latency.
 *
 *   node --import tsx bench/servers/sign-in-flooder.ts <server url> <kind> <round> <duration ms>
 *
 * Prints `READY` once it holds a form token, floods for the duration, then prints `RESULT <json>`:
 * per status, the number of answers and their median time.
 */
import { Agent } from 'node:http';
import { type Answer, median, send } from '../timing.ts';

export const FLOOD = 200;
const WRONG = 'not the right password at all';

/**
 * Each flood keeps `FLOOD` wrong-password sign-ins for new usernames in flight:
 * - burst: all sent at once, once, each from a new address (only the Argon2 budget bounds them);
 * - one address: from one client address (new each round, so an earlier round's 15-minute budget
 *   does not carry over): the per-address throttle answers 429 after 50;
 * - spread: each from a new address, which no per-address throttle slows down;
 * - control: like spread without the form token, refused (403) before any password work: the cost
 *   of the HTTP flood itself, to tell Argon2's share from the rest.
 */
export const FLOODS = {
  burst: { loop: false, spread: true, csrf: true },
  'one address': { loop: true, spread: false, csrf: true },
  spread: { loop: true, spread: true, csrf: true },
  control: { loop: true, spread: true, csrf: false },
} as const;

export type FloodKind = keyof typeof FLOODS;

async function flood(url: string, kind: FloodKind, round: number, durationMs: number): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: FLOOD });
  const page = await send(agent, `${url}/signin`, { headers: { accept: 'text/html' } });
  const cookie = page.cookies.map((line) => line.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  const shape = FLOODS[kind];
  const side = Object.keys(FLOODS).indexOf(kind) + 1;
  const answers: Answer[] = [];
  let sent = 0;
  process.stdout.write('READY\n');
  const until = performance.now() + durationMs;
  const signIn = async (): Promise<void> => {
    const index = sent++;
    const address = shape.spread
      ? `10.${side * 10 + round}.${(index >> 8) & 255}.${index & 255}`
      : `192.0.2.${round}`;
    const username = `flood${side}r${round}x${index}`;
    const form = new URLSearchParams({ ...(shape.csrf ? { _csrf: csrf } : {}), username, password: WRONG });
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      origin: url,
      'sec-fetch-site': 'same-origin',
      cookie,
      'x-forwarded-for': address,
    };
    answers.push(await send(agent, `${url}/signin`, { method: 'POST', headers, body: form.toString() }));
  };
  const worker = async (): Promise<void> => {
    do await signIn();
    while (shape.loop && performance.now() < until);
  };
  await Promise.all(Array.from({ length: FLOOD }, worker));
  agent.destroy();
  return answers;
}

function summary(answers: readonly Answer[]): Record<string, { count: number; medianMs: number }> {
  const byStatus = new Map<number, number[]>();
  for (const answer of answers)
    byStatus.set(answer.status, [...(byStatus.get(answer.status) ?? []), answer.ms]);
  return Object.fromEntries(
    [...byStatus].map(([status, times]) => [
      String(status),
      { count: times.length, medianMs: median(times) },
    ]),
  );
}

if (import.meta.filename === process.argv[1]) {
  const [url = '', kind = '', round = '0', duration = '0'] = process.argv.slice(2);
  if (!(kind in FLOODS)) throw new TypeError(`kind must be one of ${Object.keys(FLOODS).join(', ')}`);
  const answers = await flood(url, kind as FloodKind, Number(round), Number(duration));
  process.stdout.write(`RESULT ${JSON.stringify(summary(answers))}\n`);
}
