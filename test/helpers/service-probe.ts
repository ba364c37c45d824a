/** Errors that say no server listens at the address at all: a machine without the service. */
const ABSENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);

/**
 * Answers that waiting will not change: PostgreSQL refusing the login (SQLSTATE class 28) or
 * knowing no such database (3D000), Redis asking for a password. Skipped (or failed, in CI) at once.
 */
function isFinal(code: string | undefined, text: string): boolean {
  if (code !== undefined && (code.startsWith('28') || code === '3D000')) return true;
  return /\b(NOAUTH|WRONGPASS)\b/.test(text);
}

/** How long a server that is there but busy (too many connections, starting up, slow) gets to answer. */
const PATIENCE_MS = 30_000;

export interface ServiceProbe {
  /** What the notice and the CI failure call it, with its address: "PostgreSQL at postgres://…". */
  readonly name: string;
  /** One connection attempt; throws what the client threw. */
  attempt(): Promise<void>;
}

function describeError(error: unknown): { code: string | undefined; text: string } {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(error);
  return { code: typeof code === 'string' ? code : undefined, text: code ? `${code}: ${text}` : text };
}

/**
 * Resolves to undefined once the service answers, else to the last error. A refused connection
 * outside CI answers at once (a fresh laptop without the service), as does a refused login; anything
 * else, and a refused connection in CI, is retried with backoff until 30 s have passed (the last
 * attempt may add its own timeout), so a loaded machine does not turn a slow accept into a failed run.
 */
async function firstAnswer(probe: ServiceProbe): Promise<string | undefined> {
  const deadline = Date.now() + PATIENCE_MS;
  for (let attempt = 0; ; attempt++) {
    let failure: { code: string | undefined; text: string };
    try {
      await probe.attempt();
      return undefined;
    } catch (error) {
      failure = describeError(error);
    }
    const absent = failure.code !== undefined && ABSENT.has(failure.code);
    if (absent && process.env.CI !== 'true') return failure.text;
    if (isFinal(failure.code, failure.text) || Date.now() >= deadline) return failure.text;
    await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 4000)));
  }
}

const answers = new Map<string, Promise<string | undefined>>();

/**
 * Whether the suites that need this service run here: undefined when they do, else the reason they
 * skip (with a visible notice). With `CI=true` a missing service fails the run instead.
 */
export async function serviceSkipReason(probe: ServiceProbe): Promise<string | undefined> {
  let answer = answers.get(probe.name);
  if (!answer) {
    answer = firstAnswer(probe);
    answers.set(probe.name, answer);
  }
  const error = await answer;
  if (error === undefined) return undefined;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${probe.name} is not reachable (${error})`);
  const reason = `${probe.name} not reachable: its suites skipped`;
  console.warn(`NOTICE: ${reason} (${error})`);
  return reason;
}
