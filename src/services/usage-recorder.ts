import type { Store, UsageIncrement } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';

const HOUR_MS = 3_600_000;
/** Past this many counters waiting for the store, new ones are dropped (and counted as dropped). */
const MAX_PENDING = 200_000;

interface Pending {
  readonly username: string;
  readonly tokenId: string;
  readonly service: string;
  readonly outcome: string;
  readonly hour: number;
  /** `hour` in milliseconds. */
  readonly hourStart: number;
  count: number;
  lastUsed: number;
}

type ByOutcome = Map<string, Pending>;

/**
 * Counts decisions in memory and adds them to the store in batches, never per request. A crash
 * loses at most one flush interval (and the write under way); a failed flush keeps its counts for
 * the next one. Counters are nested maps keyed by strings the caller already holds, so counting
 * builds no new string.
 */
export class UsageRecorder {
  readonly #store: Store;
  #pending = new Map<string, Map<string, ByOutcome>>();
  /** Counters of a finished hour, or restored after a failed flush. */
  #sealed: Pending[] = [];
  #size = 0;
  /** The counter used last. */
  #last: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  /** The write that follows the one under way, for what was counted after it took its batch. */
  #queued: Promise<void> | undefined;
  /** Tokens used on Tessera's own API (not counted as requests): id to the latest use. */
  #touched = new Map<string, number>();
  lastFlushAt = Date.now();
  flushErrors = 0;
  dropped = 0;

  constructor(store: Store) {
    this.#store = store;
  }

  record(username: string, tokenId: string, service: string, outcome: string, now: number): void {
    // A busy token counts into the same counter request after request: a few comparisons, no lookup.
    const last = this.#last;
    if (
      last !== undefined &&
      last.tokenId === tokenId &&
      last.service === service &&
      last.outcome === outcome &&
      now >= last.hourStart &&
      now < last.hourStart + HOUR_MS
    ) {
      last.count += 1;
      if (now > last.lastUsed) last.lastUsed = now;
      return;
    }
    this.#recordSlowly(username, tokenId, service, outcome, now);
  }

  #recordSlowly(username: string, tokenId: string, service: string, outcome: string, now: number): void {
    const hour = Math.floor(now / HOUR_MS);
    const byOutcome = this.#counters(tokenId, service);
    const entry = byOutcome.get(outcome);
    if (entry !== undefined && entry.hour === hour) {
      entry.count += 1;
      if (now > entry.lastUsed) entry.lastUsed = now;
      this.#last = entry;
      return;
    }
    if (entry !== undefined) this.#sealed.push(entry);
    else if (this.#size >= MAX_PENDING) {
      this.dropped += 1;
      return;
    } else this.#size += 1;
    const created = {
      username,
      tokenId,
      service,
      outcome,
      hour,
      hourStart: hour * HOUR_MS,
      count: 1,
      lastUsed: now,
    };
    byOutcome.set(outcome, created);
    this.#last = created;
  }

  /** Moves a token's `lastUsed` without counting a request (a call to Tessera's own API). */
  touch(tokenId: string, now: number): void {
    if (now > (this.#touched.get(tokenId) ?? 0)) this.#touched.set(tokenId, now);
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  /**
   * Writes what has been counted so far. A write under way may have taken its batch before this
   * call, so the call waits for it and then for one more; calls made meanwhile share that next write.
   */
  flush(): Promise<void> {
    if (this.#flushing === undefined) return this.#startWrite();
    const next = (): Promise<void> => {
      this.#queued = undefined;
      return this.#flushing ?? this.#startWrite();
    };
    this.#queued ??= this.#flushing.then(next, next);
    return this.#queued;
  }

  #startWrite(): Promise<void> {
    this.#flushing = this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  #counters(tokenId: string, service: string): ByOutcome {
    let byService = this.#pending.get(tokenId);
    if (byService === undefined) {
      byService = new Map();
      this.#pending.set(tokenId, byService);
    }
    let byOutcome = byService.get(service);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      byService.set(service, byOutcome);
    }
    return byOutcome;
  }

  async #write(): Promise<void> {
    const touched = this.#touched;
    if (touched.size > 0) {
      this.#touched = new Map();
      try {
        await this.#store.touchTokens(
          [...touched].map(([tokenId, at]) => ({ tokenId, lastUsed: isoTime(at) })),
        );
      } catch {
        this.flushErrors += 1;
        for (const [tokenId, at] of touched) this.touch(tokenId, at);
        return;
      }
    }
    const batch = this.#take();
    if (batch.length > 0) {
      try {
        await this.#store.addUsage(batch.map(toIncrement));
      } catch {
        this.flushErrors += 1;
        this.#restore(batch);
        return;
      }
    }
    this.lastFlushAt = Date.now();
  }

  #take(): Pending[] {
    const batch = this.#sealed;
    for (const byService of this.#pending.values()) {
      for (const byOutcome of byService.values()) batch.push(...byOutcome.values());
    }
    this.#pending = new Map();
    this.#sealed = [];
    this.#size = 0;
    this.#last = undefined;
    return batch;
  }

  #restore(batch: readonly Pending[]): void {
    for (const entry of batch) {
      if (this.#sealed.length + this.#size < MAX_PENDING) this.#sealed.push(entry);
      else this.dropped += entry.count;
    }
  }
}

function toIncrement(entry: Pending): UsageIncrement {
  return {
    username: entry.username,
    tokenId: entry.tokenId,
    service: entry.service,
    outcome: entry.outcome,
    hour: isoTime(entry.hour * HOUR_MS),
    count: entry.count,
    lastUsed: entry.outcome === 'allowed' ? isoTime(entry.lastUsed) : null,
  };
}
