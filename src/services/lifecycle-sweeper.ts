import type { LifecyclePolicy } from '../config.ts';
import { systemSource, toAuditEvent } from '../core/audit.ts';
import type { Clock, RandomSource } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';
import type { TokenCache } from './token-cache.ts';

const DAY_MS = 86_400_000;
const BATCH = 200;

export interface SweepResult {
  readonly expiring: number;
  readonly expired: number;
  readonly revokedUnused: number;
}

/**
 * Time-driven lifecycle work, on every node, safe to run concurrently: `token.expiring` a set number
 * of days before a token expires, `token.expired` once it has (each recorded once per token,
 * whichever node gets there first), and, when the operator asks for it, revoking tokens unused for
 * N days. Each is an audit event, and so a webhook event.
 */
export class LifecycleSweeper {
  readonly #store: Store;
  readonly #cache: TokenCache;
  readonly #policy: LifecyclePolicy;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SweepResult> | undefined;
  errors = 0;

  constructor(deps: {
    readonly store: Store;
    readonly cache: TokenCache;
    readonly policy: LifecyclePolicy;
    readonly clock: Clock;
    readonly random: RandomSource;
    readonly intervalMs?: number;
  }) {
    this.#store = deps.store;
    this.#cache = deps.cache;
    this.#policy = deps.policy;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#intervalMs = deps.intervalMs ?? 60_000;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.sweep().catch(() => {}), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }

  /** One pass; concurrent calls share it. */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#pass()
      .catch((error: unknown) => {
        this.errors += 1;
        throw error;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #pass(): Promise<SweepResult> {
    const now = this.#clock.now();
    const at = isoTime(now);
    let expired = 0;
    for (const token of await this.#store.tokensToNotify('expired', null, isoTime(now + 1), BATCH)) {
      const event = this.#event('token.expire', token.username, token.id, 'expiry', {
        expiresAt: token.expiresAt,
      });
      if (await this.#store.recordNotice(token.id, 'expired', at, [event])) expired += 1;
    }
    let expiring = 0;
    const window = isoTime(now + this.#policy.expiringNoticeDays * DAY_MS);
    for (const token of await this.#store.tokensToNotify('expiring', isoTime(now + 1), window, BATCH)) {
      const event = this.#event('token.expiring', token.username, token.id, 'expiry', {
        expiresAt: token.expiresAt,
      });
      if (await this.#store.recordNotice(token.id, 'expiring', at, [event])) expiring += 1;
    }
    let revokedUnused = 0;
    const days = this.#policy.revokeUnusedAfterDays;
    if (days !== null) {
      const before = isoTime(now - days * DAY_MS);
      for (const token of await this.#store.unusedTokens(before, BATCH)) {
        const event = this.#event('token.delete', token.username, token.id, 'unused-policy', {
          usage: token.usage,
          reason: 'unused',
          unusedDays: days,
          ...(token.lastUsed ? { lastUsed: token.lastUsed } : {}),
        });
        // Still unused at the moment of the delete: a use flushed since the query keeps the token.
        if (await this.#store.deleteToken(token.id, at, null, [event], { unusedBefore: before }))
          revokedUnused += 1;
        this.#cache.evict(token.id);
      }
    }
    return { expiring, expired, revokedUnused };
  }

  #event(
    action: 'token.expire' | 'token.expiring' | 'token.delete',
    username: string,
    target: string,
    what: string,
    details: Record<string, unknown>,
  ) {
    return toAuditEvent(
      { action, username, target, source: systemSource(what), time: isoTime(this.#clock.now()), details },
      this.#random,
    );
  }
}
