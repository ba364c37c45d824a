import type { Inspection } from './token-service.ts';

interface Entry {
  readonly inspection: Inspection;
  readonly ids: readonly string[];
  /** The entry is dropped at this time (ms): the TTL, or an expiry of the token or its parent. */
  readonly validUntil: number;
  /** When the store last confirmed this verdict (ms). */
  readonly verifiedAt: number;
}

export interface TokenCacheOptions {
  /** The most entries kept; the oldest go first. */
  readonly maxEntries?: number;
  /** A safety net only: changes evict entries at once (see ChangeFollower). */
  readonly ttlMs?: number;
}

/**
 * Positive verdicts (`TokenValid`) by exact token string, so a repeat costs one Map lookup.
 * Every entry is indexed by the token ids it depends on (its own, or a tk's parent), and a change
 * to any of them evicts it. A lookup that started before an eviction never re-inserts what was
 * evicted: `epoch()` is read before the store is asked, and `set` refuses a stale epoch.
 */
export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #byId = new Map<string, Set<string>>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  #epoch = 0;
  #suspended = false;
  hits = 0;
  misses = 0;

  constructor({ maxEntries = 100_000, ttlMs = 60_000 }: TokenCacheOptions = {}) {
    this.#maxEntries = maxEntries;
    this.#ttlMs = ttlMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  epoch(): number {
    return this.#epoch;
  }

  get(raw: string, now: number): Inspection | undefined {
    if (this.#suspended) return undefined;
    const entry = this.#entries.get(raw);
    if (entry === undefined || now >= entry.validUntil) {
      this.misses += 1;
      if (entry) this.#remove(raw, entry);
      return undefined;
    }
    this.hits += 1;
    return entry.inspection;
  }

  set(
    raw: string,
    inspection: Inspection,
    options: {
      readonly ids: readonly string[];
      readonly epoch: number;
      readonly now: number;
      readonly expiresAt?: number;
    },
  ): void {
    if (options.epoch !== this.#epoch) return;
    const validUntil = Math.min(options.now + this.#ttlMs, options.expiresAt ?? Number.POSITIVE_INFINITY);
    const previous = this.#entries.get(raw);
    if (previous) this.#remove(raw, previous);
    if (this.#entries.size >= this.#maxEntries) this.#evictOldest();
    this.#entries.set(raw, { inspection, ids: options.ids, validUntil, verifiedAt: options.now });
    for (const id of options.ids) {
      let raws = this.#byId.get(id);
      if (!raws) {
        raws = new Set();
        this.#byId.set(id, raws);
      }
      raws.add(raw);
    }
  }

  /** Forgets everything that depends on this token id. */
  evict(id: string): void {
    this.#epoch += 1;
    const raws = this.#byId.get(id);
    if (!raws) return;
    for (const raw of [...raws]) {
      const entry = this.#entries.get(raw);
      if (entry) this.#remove(raw, entry);
    }
  }

  /**
   * While this node cannot hear about changes (its change feed is down), nothing is answered from
   * memory: every verdict comes from the store until `resume`. Verdicts are still recorded, for
   * `recent` only.
   */
  suspend(): void {
    this.#suspended = true;
  }

  /**
   * The feed is back: what was missed cannot be told apart, so the cache starts empty, unless the
   * caller knows every change made meanwhile was evicted (`keep`: a suspension only for a slow read).
   */
  resume(options: { readonly keep?: boolean } = {}): void {
    if (!options.keep) this.clear();
    this.#suspended = false;
  }

  /**
   * A verdict the store confirmed at most `maxAgeMs` ago, for when the store cannot be asked: a
   * token in use keeps working through a short outage, anything else is refused.
   */
  recent(raw: string, now: number, maxAgeMs: number): Inspection | undefined {
    const entry = this.#entries.get(raw);
    if (!entry || now >= entry.validUntil || now - entry.verifiedAt > maxAgeMs) return undefined;
    return entry.inspection;
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  clear(): void {
    this.#epoch += 1;
    this.#entries.clear();
    this.#byId.clear();
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (oldest.done) return;
    const entry = this.#entries.get(oldest.value);
    if (entry) this.#remove(oldest.value, entry);
  }

  #remove(raw: string, entry: Entry): void {
    this.#entries.delete(raw);
    for (const id of entry.ids) {
      const raws = this.#byId.get(id);
      raws?.delete(raw);
      if (raws?.size === 0) this.#byId.delete(id);
    }
  }
}
