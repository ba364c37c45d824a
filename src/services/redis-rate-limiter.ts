import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RateLimiter, RateLimitResult, RateLimitRule } from './rate-limiter.ts';

export interface RedisRateLimiterOptions {
  /** A `redis://` or `rediss://` URL. */
  readonly url: string;
  /** Namespace of the counters in Redis. */
  readonly prefix?: string;
  /** How often local hits are sent and cluster totals fetched: the overshoot window. */
  readonly syncIntervalMs?: number;
  /** A sync that takes longer fails and is retried: counting stays local meanwhile. */
  readonly commandTimeoutMs?: number;
  /** Called with the first error of each outage (not on every failed sync). */
  readonly onError?: (error: unknown) => void;
}

/** One fixed window of one key, as this node knows it. */
interface SharedWindow {
  readonly redisKey: string;
  readonly start: number;
  readonly end: number;
  /** The cluster total Redis last answered for this window (our own hits sent until then included). */
  known: number;
  /** Hits sent in the sync awaiting its answer. */
  inFlight: number;
  /** Hits counted here and not yet sent. */
  unsent: number;
}

/**
 * INCRBY each key by its increment and return the new totals, all or nothing. The first writer sets
 * the expiry; nodes with skewed clocks then cannot keep extending a finished window.
 */
const SCRIPT = `local totals = {}
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
end
return totals`;
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');
/** Keys per script call: one call is atomic, so a huge batch would stall every other Redis client. */
const CHUNK = 500;
/** A counter outlives its window by this much, for nodes whose clocks run a little behind. */
const EXPIRY_GRACE_MS = 5000;
const DEFAULT_PREFIX = 'tessera:rl:';

/** The Redis keys (a SCAN pattern) holding the counters of one limiter key, e.g. `token:<id>`. */
export function counterPattern(key: string, prefix = DEFAULT_PREFIX): string {
  return `${prefix}${digestOf(key)}:*`;
}

/** Keys are hashed: some carry a temporary token, which must not sit in Redis in the clear. */
function digestOf(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/**
 * Fixed windows shared by every node through Redis, without ever waiting on it: `hit` answers at
 * once from this node's view (the last cluster total plus the hits counted here since), and a
 * timer sends the local hits in one atomic script every `syncIntervalMs`, learning the new totals.
 * Nodes may together admit more than the limit by what the others admitted in the last two sync
 * intervals and a round trip, never more than N × limit; while Redis is unreachable each node keeps
 * counting on its own, so a limit is never lifted.
 * See docs/rate-limits.md.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #syncIntervalMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #windows = new Map<string, SharedWindow>();
  #dirty = new Set<SharedWindow>();
  #now = 0;
  #nextSweep = 0;
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #failing = false;
  /** Failed syncs and connection errors. */
  errors = 0;
  /** Wall-clock time of the last successful sync (0 before the first). */
  lastSyncAt = 0;

  constructor(options: RedisRateLimiterOptions) {
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#syncIntervalMs = options.syncIntervalMs ?? 50;
    this.#onError = options.onError ?? (() => {});
    this.#client = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: 1000,
      commandTimeout: options.commandTimeoutMs ?? 200,
      // Fail at once while disconnected: the hits stay counted here and go with the next sync.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    });
    this.#client.on('error', (error: unknown) => this.#fail(error));
  }

  /** Whether the last sync reached Redis (false before the first). */
  get shared(): boolean {
    return this.lastSyncAt > 0 && !this.#failing;
  }

  hit(key: string, rule: RateLimitRule, now: number): RateLimitResult {
    this.#now = now;
    this.#sweep(now);
    const window = this.#windowOf(key, rule, now);
    window.unsent += 1;
    this.#dirty.add(window);
    const count = window.known + window.inFlight + window.unsent;
    return {
      allowed: count <= rule.limit,
      limit: rule.limit,
      interval: rule.interval,
      remaining: Math.max(0, rule.limit - count),
      reset: Math.ceil(window.end / 1000),
    };
  }

  /**
   * Starts syncing and waits for the first connection attempt only: a Redis that is down delays a
   * node's start by the connect timeout (1 s) at most, and is retried in the background.
   */
  async start(): Promise<void> {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (!this.#syncing) void this.sync();
    }, this.#syncIntervalMs);
    this.#timer.unref();
    await this.#client.connect().catch((error: unknown) => this.#fail(error));
  }

  /** Sends every hit counted so far and learns the cluster totals; never rejects. */
  async sync(): Promise<void> {
    while (this.#syncing) await this.#syncing;
    this.#syncing = this.#send().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  /** Stops syncing, sends what is left (bounded by the command timeout) and disconnects. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.sync();
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  #windowOf(key: string, rule: RateLimitRule, now: number): SharedWindow {
    const length = rule.interval * 1000;
    const start = Math.floor(now / length) * length;
    const current = this.#windows.get(key);
    if (current && current.start === start && current.end === start + length) return current;
    const redisKey = this.#redisKey(key, rule, start);
    const window = { redisKey, start, end: start + length, known: 0, inFlight: 0, unsent: 0 };
    this.#windows.set(key, window);
    return window;
  }

  #redisKey(key: string, rule: RateLimitRule, start: number): string {
    return `${this.#prefix}${digestOf(key)}:${rule.interval}:${start}`;
  }

  async #send(): Promise<void> {
    const batch = [...this.#dirty].filter((window) => window.end > this.#now && window.unsent > 0);
    this.#dirty = new Set();
    if (batch.length === 0) return;
    for (const window of batch) {
      window.inFlight = window.unsent;
      window.unsent = 0;
    }
    const chunks: SharedWindow[][] = [];
    for (let i = 0; i < batch.length; i += CHUNK) chunks.push(batch.slice(i, i + CHUNK));
    await Promise.all(chunks.map((chunk) => this.#sendChunk(chunk)));
  }

  async #sendChunk(chunk: readonly SharedWindow[]): Promise<void> {
    try {
      const totals = await this.#run(chunk);
      chunk.forEach((window, i) => {
        // Never backwards: a Redis restarted empty must not hand out a fresh budget mid-window.
        window.known = Math.max(Number(totals[i]), window.known + window.inFlight);
        window.inFlight = 0;
      });
      this.#failing = false;
      this.lastSyncAt = Date.now();
    } catch (error) {
      // Whether a timed-out script ran is unknown: resending may count hits twice, which errs strict.
      for (const window of chunk) {
        window.unsent += window.inFlight;
        window.inFlight = 0;
        this.#dirty.add(window);
      }
      this.#fail(error);
    }
  }

  async #run(chunk: readonly SharedWindow[]): Promise<unknown[]> {
    const keys = chunk.map((window) => window.redisKey);
    const args = chunk.flatMap((window) => [window.inFlight, this.#ttl(window)]);
    try {
      return (await this.#client.evalsha(SCRIPT_SHA, keys.length, ...keys, ...args)) as unknown[];
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await this.#client.eval(SCRIPT, keys.length, ...keys, ...args)) as unknown[];
    }
  }

  /** Until the window ends by the callers' clock, never less than the grace nor more than a window. */
  #ttl(window: SharedWindow): number {
    const left = Math.min(Math.max(window.end - this.#now, 0), window.end - window.start);
    return left + EXPIRY_GRACE_MS;
  }

  #fail(error: unknown): void {
    this.errors += 1;
    if (this.#failing) return;
    this.#failing = true;
    this.#onError(error);
  }

  /** Drops finished windows now and then, so memory follows the active keys only. */
  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 60_000;
    for (const [key, window] of this.#windows) {
      if (window.end > now) continue;
      this.#windows.delete(key);
      this.#dirty.delete(window);
    }
  }
}
