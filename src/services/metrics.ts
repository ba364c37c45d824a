/** Latency buckets of the verification histogram, in seconds. */
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export interface MetricsSources {
  cacheHits(): number;
  cacheMisses(): number;
  cacheEntries(): number;
  lastUsageFlushAt(): number;
  usageFlushErrors(): number;
  usageDropped(): number;
  changeFollowerErrors(): number;
  /** Times the verdict cache was suspended because the change log could not be read in time. */
  cacheSuspensions(): number;
  /** Failed reloads of the signing keys kept in the database. */
  keyRingErrors(): number;
  /** Webhook attempts by this process since it started. */
  webhooks(): { readonly delivered: number; readonly retried: number; readonly failed: number };
  /** Signing keys kept in the database; undefined when they are kept in the data folder. */
  keyRing():
    | { readonly size: number; readonly lastRefreshAt: number; readonly clockSkewMs: number }
    | undefined;
  /** Shared rate limits; undefined without `TESSERA_REDIS_URL`. */
  redis(): { readonly shared: boolean; readonly errors: number; readonly lastSyncAt: number } | undefined;
}

/** The few numbers an operator graphs, kept as plain counters and rendered in Prometheus text format. */
export class Metrics {
  readonly #decisions = new Map<string, number>();
  readonly #buckets = new Array<number>(BUCKETS.length).fill(0);
  #count = 0;
  #sum = 0;
  storeErrors = 0;

  #allowed = 0;

  decision(outcome: string, seconds: number): void {
    // The common case is a plain field increment; refusals are rarer and keyed by reason.
    if (outcome === 'allowed') this.#allowed += 1;
    else this.#decisions.set(outcome, (this.#decisions.get(outcome) ?? 0) + 1);
    this.#count += 1;
    this.#sum += seconds;
    for (let index = 0; index < BUCKETS.length; index++) {
      if (seconds <= (BUCKETS[index] as number)) {
        this.#buckets[index] = (this.#buckets[index] as number) + 1;
        break;
      }
    }
  }

  render(sources: MetricsSources, now: number): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    metric(
      'tessera_decisions_total',
      'counter',
      'Verification decisions by outcome (allowed or the refusal reason).',
    );
    const decisions = new Map(this.#decisions);
    if (this.#allowed > 0) decisions.set('allowed', this.#allowed);
    for (const [outcome, count] of [...decisions].sort())
      lines.push(`tessera_decisions_total{outcome="${outcome}"} ${count}`);
    metric('tessera_verify_duration_seconds', 'histogram', 'Time to reach a verification decision.');
    let cumulative = 0;
    BUCKETS.forEach((bound, index) => {
      cumulative += this.#buckets[index] as number;
      lines.push(`tessera_verify_duration_seconds_bucket{le="${bound}"} ${cumulative}`);
    });
    lines.push(`tessera_verify_duration_seconds_bucket{le="+Inf"} ${this.#count}`);
    lines.push(
      `tessera_verify_duration_seconds_sum ${this.#sum}`,
      `tessera_verify_duration_seconds_count ${this.#count}`,
    );
    const hits = sources.cacheHits();
    const misses = sources.cacheMisses();
    metric('tessera_cache_hits_total', 'counter', 'Token verdicts served from the cache.');
    lines.push(`tessera_cache_hits_total ${hits}`);
    metric('tessera_cache_misses_total', 'counter', 'Token verdicts that needed the store.');
    lines.push(`tessera_cache_misses_total ${misses}`);
    metric('tessera_cache_hit_ratio', 'gauge', 'Hits over all lookups since start.');
    lines.push(`tessera_cache_hit_ratio ${hits + misses === 0 ? 0 : hits / (hits + misses)}`);
    metric('tessera_cache_entries', 'gauge', 'Token verdicts held in the cache.');
    lines.push(`tessera_cache_entries ${sources.cacheEntries()}`);
    metric(
      'tessera_usage_flush_lag_seconds',
      'gauge',
      'Seconds since usage counts were last written to the store.',
    );
    lines.push(`tessera_usage_flush_lag_seconds ${Math.max(0, (now - sources.lastUsageFlushAt()) / 1000)}`);
    metric(
      'tessera_usage_dropped_total',
      'counter',
      'Usage counts dropped because too many were waiting for the store.',
    );
    lines.push(`tessera_usage_dropped_total ${sources.usageDropped()}`);
    metric(
      'tessera_store_errors_total',
      'counter',
      'Failed store operations (verification, usage flushes, change log reads).',
    );
    lines.push(
      `tessera_store_errors_total ${this.storeErrors + sources.usageFlushErrors() + sources.changeFollowerErrors()}`,
    );
    metric(
      'tessera_cache_suspensions_total',
      'counter',
      'Times the verdict cache stopped answering because the change log could not be read in time.',
    );
    lines.push(`tessera_cache_suspensions_total ${sources.cacheSuspensions()}`);
    metric(
      'tessera_key_ring_errors_total',
      'counter',
      'Failed reloads of the signing keys kept in the database.',
    );
    lines.push(`tessera_key_ring_errors_total ${sources.keyRingErrors()}`);
    const hooks = sources.webhooks();
    metric('tessera_webhook_attempts_total', 'counter', 'Webhook delivery attempts by outcome.');
    for (const outcome of ['delivered', 'retried', 'failed'] as const) {
      lines.push(`tessera_webhook_attempts_total{outcome="${outcome}"} ${hooks[outcome]}`);
    }
    const ring = sources.keyRing();
    if (ring) {
      metric('tessera_signing_keys', 'gauge', 'Signing keys for temporary tokens this node holds.');
      lines.push(`tessera_signing_keys ${ring.size}`);
      metric(
        'tessera_signing_keys_refresh_age_seconds',
        'gauge',
        'Seconds since this node last read the signing keys from the database.',
      );
      lines.push(
        `tessera_signing_keys_refresh_age_seconds ${Math.max(0, (now - ring.lastRefreshAt) / 1000)}`,
      );
      metric(
        'tessera_clock_skew_seconds',
        'gauge',
        'The database clock minus this node clock, measured at start and every 5 s.',
      );
      lines.push(`tessera_clock_skew_seconds ${ring.clockSkewMs / 1000}`);
    }
    const redis = sources.redis();
    if (redis) {
      metric(
        'tessera_redis_shared',
        'gauge',
        '1 while rate limits are shared through Redis, 0 while each node counts alone.',
      );
      lines.push(`tessera_redis_shared ${redis.shared ? 1 : 0}`);
      metric('tessera_redis_errors_total', 'counter', 'Failed Redis syncs and connection errors.');
      lines.push(`tessera_redis_errors_total ${redis.errors}`);
      metric(
        'tessera_redis_sync_lag_seconds',
        'gauge',
        'Seconds since rate-limit counts last reached Redis.',
      );
      lines.push(
        `tessera_redis_sync_lag_seconds ${redis.lastSyncAt === 0 ? -1 : Math.max(0, (now - redis.lastSyncAt) / 1000)}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}
