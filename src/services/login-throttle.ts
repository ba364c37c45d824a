/**
 * `abandoned`: no password was checked (the store or the Argon2 budget was unavailable), so the
 * attempt tells the guesser nothing and counts neither way.
 */
export type AttemptOutcome = 'success' | 'failure' | 'abandoned';

export interface ThrottleAllowed {
  readonly allowed: true;
  /** Reports how the password check ended; only the first call counts, so a `finally` cannot double count. */
  release(outcome: AttemptOutcome): void;
}

export interface ThrottleRefused {
  readonly allowed: false;
  /** Whole seconds, at least 1, for the `Retry-After` header. */
  readonly retryAfterSeconds: number;
}

export type ThrottleVerdict = ThrottleAllowed | ThrottleRefused;

export interface LoginThrottle {
  /**
   * Asks to evaluate one password attempt for this account key (e.g. 'account:alice') and client key
   * (e.g. 'ip:203.0.113.7'). When allowed, the attempt holds a slot until `release` is called.
   */
  begin(accountKey: string, clientKey: string, now: number): ThrottleVerdict;
}

export interface MemoryLoginThrottleOptions {
  /** Failures per account evaluated before the lockout starts. */
  readonly freeFailures?: number;
  /** Observation window for account failures and the client budget. */
  readonly windowMs?: number;
  /** Lock after the last free failure; doubles with each further failure. */
  readonly baseLockMs?: number;
  readonly maxLockMs?: number;
  /** Failures per client key within the window, across all accounts. */
  readonly clientFailures?: number;
  /** An attempt never released within this time is counted as a failure. */
  readonly leaseMs?: number;
  readonly sweepIntervalMs?: number;
  /** Tracked keys per map (accounts and clients each). */
  readonly maxKeys?: number;
}

interface Attempt {
  readonly startedAt: number;
  readonly account: AccountState;
  readonly client: ClientState;
  settled: boolean;
}

interface AccountState {
  readonly key: string;
  /** Consecutive failures; reset by a success or a quiet observation window. */
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
  readonly pending: Set<Attempt>;
}

interface ClientState {
  readonly key: string;
  /** Start times of failures still inside the window, ascending. */
  readonly failures: number[];
  readonly pending: Set<Attempt>;
}

interface Tracked {
  readonly key: string;
  readonly pending: Set<Attempt>;
}

const MINUTE_MS = 60_000;
// Bounds the work a full map costs per new key; busy entries seen are rotated to the back.
const EVICTION_SCAN_LIMIT = 64;
// Waiting for an in-flight check: a password hash takes well under a second.
const IN_FLIGHT_WAIT_MS = 1;

/**
 * Per-process throttle of password attempts, per account and per client.
 *
 * Account: `freeFailures` consecutive failures are evaluated, then each failure locks the account for
 * `baseLockMs * 2^n` (capped). In-flight attempts count, so concurrent requests cannot run more checks
 * than the budget; once locked, one attempt at a time. The observation window runs from the later of
 * the last failure and the end of its lock, so a capped 15-minute lock does not lapse straight back
 * into free attempts. Client: a sliding window of failure timestamps (no boundary bursts, unlike a
 * fixed window), never reset by a success, so one valid account cannot refill an attacker's budget.
 *
 * Keys are opaque: an unknown username is throttled exactly like a known one.
 */
export class MemoryLoginThrottle implements LoginThrottle {
  readonly #accounts = new Map<string, AccountState>();
  readonly #clients = new Map<string, ClientState>();
  readonly #options: Required<MemoryLoginThrottleOptions>;
  #nextSweep = Number.NEGATIVE_INFINITY;

  constructor(options: MemoryLoginThrottleOptions = {}) {
    this.#options = validOptions(options);
  }

  begin(accountKey: string, clientKey: string, now: number): ThrottleVerdict {
    this.#sweep(now);
    const account = this.#accounts.get(accountKey);
    const client = this.#clients.get(clientKey);
    if (account) this.#refreshAccount(account, now);
    if (client) this.#refreshClient(client, now);
    const waitMs = Math.max(this.#accountWait(account, now), this.#clientWait(client, now));
    if (waitMs > 0) return refused(waitMs);
    if (!this.#roomFor(accountKey, clientKey, now)) return refused(IN_FLIGHT_WAIT_MS);
    return this.#reserve(
      account ?? { key: accountKey, failures: 0, lastFailureAt: 0, lockedUntil: 0, pending: new Set() },
      client ?? { key: clientKey, failures: [], pending: new Set() },
      now,
    );
  }

  /** Consecutive failures currently counted for the account (for tests and metrics). */
  failuresOf(accountKey: string, now: number): number {
    const account = this.#accounts.get(accountKey);
    if (!account) return 0;
    this.#refreshAccount(account, now);
    return account.failures;
  }

  trackedKeys(): { readonly accounts: number; readonly clients: number } {
    return { accounts: this.#accounts.size, clients: this.#clients.size };
  }

  // When every tracked entry is locked or busy, refusing newcomers is safe; unlocking someone is not.
  #roomFor(accountKey: string, clientKey: string, now: number): boolean {
    const { clientFailures } = this.#options;
    return (
      // An account in its backoff stays even after a lock ends: dropping it would restart the doubling.
      this.#hasRoom(
        this.#accounts,
        accountKey,
        (a) => a.pending.size === 0 && now >= a.lockedUntil && a.failures < this.#options.freeFailures,
      ) &&
      this.#hasRoom(
        this.#clients,
        clientKey,
        (c) => c.pending.size === 0 && c.failures.length < clientFailures,
      )
    );
  }

  #reserve(account: AccountState, client: ClientState, now: number): ThrottleAllowed {
    const attempt: Attempt = { startedAt: now, account, client, settled: false };
    account.pending.add(attempt);
    client.pending.add(attempt);
    moveToBack(this.#accounts, account);
    moveToBack(this.#clients, client);
    return { allowed: true, release: (outcome) => this.#settle(attempt, outcome) };
  }

  #settle(attempt: Attempt, outcome: AttemptOutcome): void {
    if (attempt.settled) return;
    attempt.settled = true;
    attempt.account.pending.delete(attempt);
    attempt.client.pending.delete(attempt);
    if (outcome === 'abandoned') return;
    // Anything else but an explicit success counts as a failure, so a caller's mistake fails closed.
    if (outcome === 'success') {
      this.#clearAccount(attempt.account);
      return;
    }
    this.#recordAccountFailure(attempt.account, attempt.startedAt);
    insertSorted(attempt.client.failures, attempt.startedAt);
  }

  #clearAccount(account: AccountState): void {
    account.failures = 0;
    account.lastFailureAt = 0;
    account.lockedUntil = 0;
    if (account.pending.size === 0 && this.#accounts.get(account.key) === account) {
      this.#accounts.delete(account.key);
    }
  }

  // The lock counts from when the attempt began: `release` carries no time, and the check is short.
  #recordAccountFailure(account: AccountState, at: number): void {
    const { freeFailures, baseLockMs, maxLockMs } = this.#options;
    account.failures += 1;
    account.lastFailureAt = Math.max(account.lastFailureAt, at);
    const beyondFree = account.failures - freeFailures;
    if (beyondFree < 0) return;
    const lockMs = Math.min(maxLockMs, baseLockMs * 2 ** Math.min(beyondFree, 40));
    account.lockedUntil = Math.max(account.lockedUntil, at + lockMs);
  }

  #accountWait(account: AccountState | undefined, now: number): number {
    if (!account) return 0;
    if (now < account.lockedUntil) return account.lockedUntil - now;
    const slots = Math.max(1, this.#options.freeFailures - account.failures);
    return account.pending.size >= slots ? IN_FLIGHT_WAIT_MS : 0;
  }

  #clientWait(client: ClientState | undefined, now: number): number {
    if (!client) return 0;
    const mustLeave = client.failures.length + client.pending.size - this.#options.clientFailures + 1;
    if (mustLeave <= 0) return 0;
    const freedAt = client.failures[mustLeave - 1];
    if (freedAt === undefined) return IN_FLIGHT_WAIT_MS;
    return Math.max(IN_FLIGHT_WAIT_MS, freedAt + this.#options.windowMs - now);
  }

  #refreshAccount(account: AccountState, now: number): void {
    this.#expireLeases(account, now);
    const quietSince = Math.max(account.lastFailureAt, account.lockedUntil);
    if (account.failures > 0 && now >= quietSince + this.#options.windowMs) {
      account.failures = 0;
      account.lastFailureAt = 0;
      account.lockedUntil = 0;
    }
  }

  #refreshClient(client: ClientState, now: number): void {
    this.#expireLeases(client, now);
    const cutoff = now - this.#options.windowMs;
    const stale = client.failures.findIndex((at) => at > cutoff);
    client.failures.splice(0, stale === -1 ? client.failures.length : stale);
  }

  // A caller that never releases (crash, hung request) must not hold a slot forever.
  #expireLeases(state: Tracked, now: number): void {
    for (const attempt of state.pending) {
      if (now - attempt.startedAt >= this.#options.leaseMs) this.#settle(attempt, 'failure');
    }
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + this.#options.sweepIntervalMs;
    for (const [key, account] of this.#accounts) {
      this.#refreshAccount(account, now);
      if (account.pending.size === 0 && account.failures === 0) this.#accounts.delete(key);
    }
    for (const [key, client] of this.#clients) {
      this.#refreshClient(client, now);
      if (client.pending.size === 0 && client.failures.length === 0) this.#clients.delete(key);
    }
  }

  /**
   * Makes space for a new key by dropping the least recently used idle entry. Dropping one forgets at
   * most a few free failures (or part of a client budget); locked, exhausted or in-flight entries are
   * never dropped, and when none can go the caller refuses the new key instead.
   */
  #hasRoom<S extends Tracked>(map: Map<string, S>, key: string, isIdle: (state: S) => boolean): boolean {
    if (map.has(key) || map.size < this.#options.maxKeys) return true;
    for (let scanned = 0; scanned < EVICTION_SCAN_LIMIT; scanned++) {
      const oldest = map.values().next();
      if (oldest.done) return true;
      map.delete(oldest.value.key);
      if (isIdle(oldest.value)) return true;
      map.set(oldest.value.key, oldest.value);
    }
    return false;
  }
}

function refused(waitMs: number): ThrottleRefused {
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
}

// Map iteration follows insertion order, so re-inserting keeps the least recently used entries first.
function moveToBack<S extends Tracked>(map: Map<string, S>, state: S): void {
  map.delete(state.key);
  map.set(state.key, state);
}

function insertSorted(values: number[], value: number): void {
  const index = values.findIndex((existing) => existing > value);
  values.splice(index === -1 ? values.length : index, 0, value);
}

function validOptions(options: MemoryLoginThrottleOptions): Required<MemoryLoginThrottleOptions> {
  const {
    freeFailures = 5,
    windowMs = 15 * MINUTE_MS,
    baseLockMs = 1000,
    maxLockMs = 15 * MINUTE_MS,
    clientFailures = 50,
    leaseMs = MINUTE_MS,
    sweepIntervalMs = MINUTE_MS,
    maxKeys = 100_000,
  } = options;
  const valid = {
    freeFailures,
    windowMs,
    baseLockMs,
    maxLockMs,
    clientFailures,
    leaseMs,
    sweepIntervalMs,
    maxKeys,
  };
  for (const [name, value] of Object.entries(valid)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`MemoryLoginThrottle option ${name} must be a positive integer, got ${value}`);
    }
  }
  return valid;
}
