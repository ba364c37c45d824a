export interface RateLimitRule {
  readonly limit: number;
  /** Seconds. */
  readonly interval: number;
}

export interface RateLimitResult {
  readonly allowed: boolean;
  readonly limit: number;
  readonly interval: number;
  readonly remaining: number;
  /** Unix seconds at which the current window ends. */
  readonly reset: number;
}

export interface RateLimiter {
  hit(key: string, rule: RateLimitRule, now: number): RateLimitResult;
}

interface Window {
  start: number;
  count: number;
  end: number;
}

/** Fixed windows aligned to the interval, counted in this process's memory. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, Window>();
  #nextSweep = 0;

  hit(key: string, rule: RateLimitRule, now: number): RateLimitResult {
    this.#sweep(now);
    const length = rule.interval * 1000;
    const start = Math.floor(now / length) * length;
    let window = this.#windows.get(key);
    if (!window || window.start !== start) {
      window = { start, count: 0, end: start + length };
      this.#windows.set(key, window);
    }
    window.count += 1;
    return {
      allowed: window.count <= rule.limit,
      limit: rule.limit,
      interval: rule.interval,
      remaining: Math.max(0, rule.limit - window.count),
      reset: Math.ceil(window.end / 1000),
    };
  }

  /** Drops finished windows now and then, so memory follows the active keys only. */
  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + 60_000;
    for (const [key, window] of this.#windows) if (window.end <= now) this.#windows.delete(key);
  }
}
