import { createHmac } from 'node:crypto';
import type { WebhookConfig } from '../config.ts';
import type { Clock } from '../core/ports.ts';
import { isoTime } from '../core/tokens.ts';
import { webhookKey } from '../storage/sql-store.ts';
import type { Delivery, WebhookOutbox } from '../storage/webhook-outbox.ts';

/** Seconds before each retry: about a day of trying in all, then the delivery is marked failed. */
export const RETRY_DELAYS_S = [10, 60, 300, 900, 3600, 10_800, 21_600, 43_200];
const LEASE_MS = 60_000;
const BATCH = 20;
const KEEP_FINISHED_MS = 7 * 86_400_000;

export interface WebhookSenderOptions {
  readonly clock: Clock;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  /** A failed attempt (never with the URL or the secret). */
  readonly onError?: (error: {
    readonly type: string;
    readonly attempt: number;
    readonly error: string;
  }) => void;
}

/** The signature header's value: `sha256=` and the hex HMAC-SHA-256 of the exact body. */
export function signatureOf(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Sends queued deliveries in the background: the request that caused an event never waits for a
 * webhook. Each POST carries `X-Tessera-Signature`, times out after 5 s, and is retried with backoff
 * (10 s up to 12 h) until it answers 2xx, for about a day.
 */
export class WebhookSender {
  readonly #outbox: WebhookOutbox;
  readonly #hooks: ReadonlyMap<string, WebhookConfig>;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #onError: NonNullable<WebhookSenderOptions['onError']>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #prunedAt = 0;
  delivered = 0;
  retried = 0;
  failed = 0;

  constructor(outbox: WebhookOutbox, hooks: readonly WebhookConfig[], options: WebhookSenderOptions) {
    this.#outbox = outbox;
    this.#hooks = new Map(hooks.map((hook) => [webhookKey(hook.url), hook]));
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#onError = options.onError ?? (() => {});
  }

  start(): void {
    if (this.#hooks.size === 0) return;
    this.#timer ??= setInterval(() => void this.tick(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Sends what is due now; concurrent calls share one pass. Store errors wait for the next tick. */
  tick(): Promise<void> {
    this.#running ??= this.#pass()
      .catch(() => {})
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #pass(): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#prunedAt > 3_600_000) {
      this.#prunedAt = now;
      await this.#outbox.prune(isoTime(now - KEEP_FINISHED_MS));
    }
    // Only the webhooks this node knows: another node (a rolling config change) sends its own.
    const due = await this.#outbox.claimDue(isoTime(now), isoTime(now + LEASE_MS), BATCH, [
      ...this.#hooks.keys(),
    ]);
    await Promise.all(due.map((delivery) => this.#send(delivery)));
  }

  async #send(delivery: Delivery): Promise<void> {
    const hook = this.#hooks.get(delivery.url);
    if (!hook) return;
    let problem: string;
    try {
      const response = await fetch(hook.url, {
        method: 'POST',
        body: delivery.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Tessera-Webhooks/1',
          'x-tessera-event': delivery.type,
          'x-tessera-delivery': delivery.id,
          'x-tessera-signature': signatureOf(delivery.payload, hook.secret),
        },
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) {
        await this.#outbox.delivered(delivery, isoTime(this.#clock.now()));
        this.delivered += 1;
        return;
      }
      problem = `HTTP ${response.status}`;
    } catch (error) {
      // The error's name or code only: messages can quote the URL, which may itself be a secret.
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      problem = cause ?? (error as Error).name ?? 'error';
    }
    this.#onError({ type: delivery.type, attempt: delivery.attempts, error: problem });
    const delay = RETRY_DELAYS_S[delivery.attempts - 1];
    const now = this.#clock.now();
    if (delay === undefined) {
      await this.#outbox.failed(delivery, isoTime(now), problem);
      this.failed += 1;
    } else {
      await this.#outbox.retry(delivery, isoTime(now + delay * 1000), problem);
      this.retried += 1;
    }
  }
}
