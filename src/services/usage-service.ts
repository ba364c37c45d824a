import type { Authorizer } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { Store, UsageRow } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';
import { authorizeAccount } from './account-access.ts';

export type UsagePeriod = 'hour' | 'day';

export interface UsageRequest {
  /** Unix ms; defaults: the last 24 hours (period hour) or 30 days (period day) up to now. */
  readonly start?: number;
  readonly end?: number;
  readonly period: UsagePeriod;
  readonly tokenId?: string;
}

/** Mapbox's Analytics API shape, plus the refusals beside the allowed counts. */
export interface UsageReport {
  readonly period: readonly [string, string];
  readonly timestamps: readonly string[];
  /** Allowed requests per service, one count per timestamp. */
  readonly services: Readonly<Record<string, number[]>>;
  /** Refused requests per reason (scope, url, rate_limited, ...), one count per timestamp. */
  readonly refused: Readonly<Record<string, number[]>>;
}

const PERIOD_MS: Readonly<Record<UsagePeriod, number>> = { hour: 3_600_000, day: 86_400_000 };
const MAX_BUCKETS: Readonly<Record<UsagePeriod, number>> = { hour: 744, day: 366 };
const DEFAULT_BUCKETS: Readonly<Record<UsagePeriod, number>> = { hour: 24, day: 30 };

export type UsageService = ReturnType<typeof createUsageService>;

export function createUsageService(deps: { readonly store: Store; readonly clock: Clock }) {
  const { store, clock } = deps;

  /** Usage of one account, or of one of its tokens, needing `analytics:read`. */
  async function report(
    authorizer: Authorizer,
    username: string,
    request: UsageRequest,
  ): Promise<UsageReport> {
    await authorizeAccount(store, authorizer, username, 'analytics:read');
    if (request.tokenId !== undefined) {
      const token = await store.findToken(request.tokenId);
      if (!token || token.username !== username) throw new TesseraError('not_found');
    }
    const [start, end] = range(request, clock.now());
    const rows = await store.usage({
      username,
      start: isoTime(start),
      end: isoTime(end),
      ...(request.tokenId === undefined ? {} : { tokenId: request.tokenId }),
    });
    return buckets(rows, start, end, PERIOD_MS[request.period]);
  }

  /** Allowed requests per token (the dashboard's chart), the same ranges as `report`. */
  async function reportByToken(
    authorizer: Authorizer,
    username: string,
    request: UsageRequest,
  ): Promise<TokenUsageReport> {
    await authorizeAccount(store, authorizer, username, 'analytics:read');
    const [start, end] = range(request, clock.now());
    const rows = await store.usageByToken({ username, start: isoTime(start), end: isoTime(end) });
    const size = PERIOD_MS[request.period];
    const count = (end - start) / size;
    const tokens = new Map<string, number[]>();
    for (const row of rows) {
      const series = tokens.get(row.tokenId) ?? new Array<number>(count).fill(0);
      const index = Math.floor((Date.parse(row.hour) - start) / size);
      series[index] = (series[index] ?? 0) + row.count;
      tokens.set(row.tokenId, series);
    }
    const timestamps = Array.from({ length: count }, (_, index) => isoTime(start + index * size));
    const described = await Promise.all(
      [...tokens].map(async ([tokenId, values]) => {
        const record = await store.findToken(tokenId);
        return { tokenId, note: record?.note ?? '', deleted: record?.deletedAt != null, values };
      }),
    );
    return { period: [isoTime(start), isoTime(end)], timestamps, tokens: described };
  }

  return { report, reportByToken };
}

export interface TokenUsageReport {
  readonly period: readonly [string, string];
  readonly timestamps: readonly string[];
  /** Allowed requests per token, one count per timestamp; deleted tokens keep their history. */
  readonly tokens: readonly TokenSeries[];
}

export interface TokenSeries {
  readonly tokenId: string;
  readonly note: string;
  readonly deleted: boolean;
  readonly values: readonly number[];
}

/** Whole periods (UTC) covering the request, within the period's maximum span. */
function range(request: UsageRequest, now: number): [number, number] {
  const size = PERIOD_MS[request.period];
  if (request.start !== undefined && request.end !== undefined && request.start >= request.end)
    throw new TesseraError('invalid_field', 'start must be before end');
  // By default the range ends with the current period, even at its very first millisecond.
  const end =
    request.end === undefined ? (Math.floor(now / size) + 1) * size : Math.ceil(request.end / size) * size;
  const start = Math.floor((request.start ?? end - DEFAULT_BUCKETS[request.period] * size) / size) * size;
  if (start >= end) throw new TesseraError('invalid_field', 'start must be before end');
  if ((end - start) / size > MAX_BUCKETS[request.period]) {
    throw new TesseraError(
      'invalid_field',
      `the range may span at most ${MAX_BUCKETS[request.period]} ${request.period}s`,
    );
  }
  return [start, end];
}

function buckets(rows: readonly UsageRow[], start: number, end: number, size: number): UsageReport {
  const count = (end - start) / size;
  const timestamps = Array.from({ length: count }, (_, index) => isoTime(start + index * size));
  // Keys come from stored data: null-prototype objects, so no key can reach Object.prototype.
  const services: Record<string, number[]> = Object.create(null);
  const refused: Record<string, number[]> = Object.create(null);
  for (const row of rows) {
    const index = Math.floor((Date.parse(row.hour) - start) / size);
    const series = row.outcome === 'allowed' ? services : refused;
    const key = row.outcome === 'allowed' ? row.service : row.outcome;
    series[key] ??= new Array<number>(count).fill(0);
    (series[key] as number[])[index] = ((series[key] as number[])[index] ?? 0) + row.count;
  }
  return { period: [isoTime(start), isoTime(end)], timestamps, services, refused };
}
