import type { Store, UsageIncrement } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';

const HOUR_MS = 3_600_000;
/** Past this many distinct keys waiting for the store, new ones are dropped (and counted as dropped). */
const MAX_PENDING_KEYS = 200_000;

interface Pending {
  readonly username: string;
  readonly tokenId: string;
  readonly service: string;
  readonly outcome: string;
  readonly hour: number;
  count: number;
  lastUsed: number;
}

/**
 * Counts decisions in memory and adds them to the store in batches, never per request. A crash
 * loses at most one flush interval. A failed flush keeps its counts for the next one.
 */
export class UsageRecorder {
  readonly #store: Store;
  #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  lastFlushAt = Date.now();
  flushErrors = 0;
  dropped = 0;

  constructor(store: Store) {
    this.#store = store;
  }

  record(username: string, tokenId: string, service: string, outcome: string, now: number): void {
    const hour = Math.floor(now / HOUR_MS);
    const key = `${tokenId}\n${service}\n${outcome}\n${hour}`;
    const entry = this.#pending.get(key);
    if (entry) {
      entry.count += 1;
      if (now > entry.lastUsed) entry.lastUsed = now;
      return;
    }
    if (this.#pending.size >= MAX_PENDING_KEYS) {
      this.dropped += 1;
      return;
    }
    this.#pending.set(key, { username, tokenId, service, outcome, hour, count: 1, lastUsed: now });
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  /** Writes what has been counted so far. Concurrent calls share one write. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #write(): Promise<void> {
    const batch = this.#pending;
    if (batch.size === 0) {
      this.lastFlushAt = Date.now();
      return;
    }
    this.#pending = new Map();
    try {
      await this.#store.addUsage([...batch.values()].map(toIncrement));
      this.lastFlushAt = Date.now();
    } catch {
      this.flushErrors += 1;
      this.#restore(batch);
    }
  }

  #restore(batch: Map<string, Pending>): void {
    for (const [key, entry] of batch) {
      const current = this.#pending.get(key);
      if (current) {
        current.count += entry.count;
        current.lastUsed = Math.max(current.lastUsed, entry.lastUsed);
      } else if (this.#pending.size < MAX_PENDING_KEYS) {
        this.#pending.set(key, entry);
      } else {
        this.dropped += entry.count;
      }
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
