import type { Store } from '../core/store.ts';
import type { ChangeListener } from '../storage/postgres-listener.ts';
import type { TokenCache } from './token-cache.ts';

export interface ChangeFollowerOptions {
  /** How often to look for changes made by other processes. */
  readonly intervalMs?: number;
  readonly onError?: (error: unknown) => void;
  /**
   * A push feed of changes (PostgreSQL LISTEN/NOTIFY). With one, the cache is trusted only while
   * the feed is connected; polling the change log stays on as a second path.
   */
  readonly listener?: ChangeListener;
  /** Signing keys were rotated somewhere, or the feed (re)connected after missing notices. */
  readonly onKeysChanged?: () => void;
  /**
   * How long the cache is trusted after the last successful read of the change log (2 s). Past it
   * the cache is suspended, even while the push feed looks connected: a feed cut off by a network
   * partition can look alive for as long as TCP keepalive takes to notice.
   */
  readonly staleAfterMs?: number;
}

const BATCH = 1000;
export const STALE_AFTER_MS = 2000;

/**
 * Follows the store's change log and evicts the cached verdicts of every token that changed, so a
 * delete or update made by another process (the CLI, another node) reaches this one within one
 * interval. Changes made by this process evict at once, before the API answers. If the log cannot
 * be read, or has not been read for `staleAfterMs`, the cache is suspended: nothing is answered
 * from memory while we cannot tell what changed. It resumes (empty) once the log reads again and,
 * with a push feed, the feed is connected.
 */
export class ChangeFollower {
  readonly #store: Store;
  readonly #cache: TokenCache;
  readonly #intervalMs: number;
  readonly #onError: (error: unknown) => void;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  readonly #listener: ChangeListener | undefined;
  readonly #onKeysChanged: () => void;
  readonly #staleAfterMs: number;
  #feedConnected = false;
  /** A read failed or the feed dropped since the cache was suspended: changes may have been missed. */
  #missedChanges = false;
  /** When the last successful read of the change log started: every change committed before is known. */
  lastPollAt = 0;
  /** How often the cache was suspended because the change log could not be read in time. */
  suspensions = 0;
  errors = 0;
  /** Changes received from the push feed. */
  pushed = 0;

  constructor(store: Store, cache: TokenCache, options: ChangeFollowerOptions = {}) {
    this.#store = store;
    this.#cache = cache;
    this.#intervalMs = options.intervalMs ?? 200;
    this.#onError = options.onError ?? (() => {});
    this.#listener = options.listener;
    this.#onKeysChanged = options.onKeysChanged ?? (() => {});
    this.#staleAfterMs = options.staleAfterMs ?? STALE_AFTER_MS;
  }

  async start(): Promise<void> {
    if (this.#listener) this.#follow(this.#listener);
    this.#seq = await this.#store.latestChange();
    this.lastPollAt = Date.now();
    this.#timer = setInterval(() => void this.poll(), this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * Until the feed is connected, and whenever it drops, the cache is suspended: verdicts come from
   * the store, so nothing missed while deaf can be served from memory. Reconnecting starts afresh.
   */
  #follow(listener: ChangeListener): void {
    this.#cache.suspend();
    listener.start({
      onChange: (tokenId) => {
        this.pushed += 1;
        this.#cache.evict(tokenId);
      },
      onKeysChanged: () => this.#onKeysChanged(),
      onConnected: () => {
        this.#feedConnected = true;
        this.#missedChanges = false;
        this.#cache.resume();
        this.#onKeysChanged();
      },
      onLost: (error) => {
        this.#feedConnected = false;
        this.#missedChanges = true;
        this.errors += 1;
        this.#cache.suspend();
        this.#onError(error);
      },
    });
  }

  /** Reads and applies what changed since the last poll. Concurrent calls share one read. */
  poll(): Promise<void> {
    // A read that hangs (a database frozen or out of reach) must not keep the cache trusted.
    if (Date.now() - this.lastPollAt > this.#staleAfterMs) this.#suspend();
    this.#running ??= this.#read().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#listener?.stop();
    await this.#running;
  }

  #suspend(): void {
    if (!this.#cache.suspended) this.suspensions += 1;
    this.#cache.suspend();
  }

  async #read(): Promise<void> {
    const started = Date.now();
    try {
      for (;;) {
        const changes = await this.#store.changesSince(this.#seq, BATCH);
        for (const change of changes) this.#cache.evict(change.tokenId);
        const last = changes.at(-1);
        if (last) this.#seq = last.seq;
        if (changes.length < BATCH) break;
      }
      this.lastPollAt = started;
      // Everything that changed while the cache was suspended has just been read: it may resume,
      // unless a push feed exists and is down (then its reconnection resumes it). Without a push feed
      // (SQLite: one writer at a time, so the log reads without gaps), a read that was only slow
      // evicted every change, and the cache keeps its verdicts. With one (PostgreSQL, where a change
      // can commit after a later one was read), the feed that looked connected may have been cut
      // off: the cache starts empty.
      if (this.#cache.suspended && (!this.#listener || this.#feedConnected)) {
        this.#cache.resume({ keep: !this.#listener && !this.#missedChanges });
        this.#missedChanges = false;
      }
    } catch (error) {
      this.errors += 1;
      // What changed meanwhile is unknown, whatever the push feed seems to say: answer from the
      // store (and, if it is down too, only from verdicts it confirmed moments ago) until the log
      // reads again.
      this.#missedChanges = true;
      this.#suspend();
      this.#onError(error);
    }
  }
}
