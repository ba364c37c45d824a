import { type AuditSource, toAuditEvent } from '../core/audit.ts';
import type { Clock, RandomSource } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { digestsEqual, hashToken, parseToken } from '../core/token-format.ts';
import { isoTime } from '../core/tokens.ts';
import type { TokenCache } from './token-cache.ts';
import type { TokenService } from './token-service.ts';

export interface LeakReport {
  /** The leaked token, as found. */
  readonly token: string;
  /** Where it was found (a public URL), recorded in the audit log. */
  readonly url?: string;
  /** Who found it: `github` (secret scanning), `report` (the report endpoint). */
  readonly source: string;
}

/** `true_positive`: a token Tessera issued (still live or not); `false_positive`: anything else. */
export type LeakLabel = 'true_positive' | 'false_positive';

export interface LeakOutcome {
  readonly label: LeakLabel;
  /** `revoked` (a secret token), `flagged` (a public one), `none` (nothing left to do, or not ours). */
  readonly action: 'revoked' | 'flagged' | 'none';
  readonly username?: string;
  readonly tokenId?: string;
}

const NOT_OURS: LeakOutcome = { label: 'false_positive', action: 'none' };

/**
 * Anything token-shaped in a reported URL is replaced: the log and webhooks never carry a token. A
 * token's payload is base64 JSON (`eyJ…`); it may be glued to other text, its dots percent-encoded.
 */
const TOKEN_SHAPE = /[PpSsTt][Kk](?:\.|%2[Ee])eyJ[A-Za-z0-9]{5,}(?:\.|%2[Ee])[A-Za-z0-9]{8,}/g;

/** Where a leak was found, as recorded: an http(s) URL of at most 2048 characters, tokens redacted. */
function recordedUrl(url: string | undefined): string | undefined {
  if (url === undefined || !/^https?:\/\/\S+$/.test(url)) return undefined;
  return url.slice(0, 2048).replace(TOKEN_SHAPE, '[REDACTED]');
}

function urlDetail(url: string | undefined): { url?: string } {
  const recorded = recordedUrl(url);
  return recorded === undefined ? {} : { url: recorded };
}

export type LeakService = ReturnType<typeof createLeakService>;

/**
 * Acts on a leaked token: a secret token is revoked at once, a public token (meant to be seen, but
 * now perhaps abused) is flagged with `leakedAt` and keeps working; both are recorded in the audit
 * log (`token.leak`). A temporary token expires within the hour by itself and is only recognised.
 */
export function createLeakService(deps: {
  readonly store: Store;
  readonly tokens: TokenService;
  readonly cache: TokenCache;
  readonly clock: Clock;
  readonly random: RandomSource;
}) {
  const { store, tokens, cache, clock, random } = deps;

  async function handle(report: LeakReport, source: AuditSource, account?: string): Promise<LeakOutcome> {
    const parsed = parseToken(report.token);
    if (!parsed || (account !== undefined && parsed.username !== account)) return NOT_OURS;
    if (parsed.usage === 'tk') {
      const { code } = await tokens.inspect(report.token);
      const ours = code === 'TokenValid' || code === 'TokenExpired' || code === 'TokenRevoked';
      return ours ? { label: 'true_positive', action: 'none', username: parsed.username } : NOT_OURS;
    }
    if (!parsed.checksumValid) return NOT_OURS;
    const record = await store.findToken(parsed.tokenId);
    if (
      !record ||
      record.username !== parsed.username ||
      !digestsEqual(record.tokenHash, hashToken(report.token))
    ) {
      return NOT_OURS;
    }
    const found = { label: 'true_positive', username: record.username, tokenId: record.id } as const;
    if (record.deletedAt !== null) return { ...found, action: 'none' };
    const now = clock.now();
    const action = record.usage === 'sk' ? 'revoked' : 'flagged';
    const event = toAuditEvent(
      {
        action: 'token.leak',
        username: record.username,
        target: record.id,
        source,
        time: isoTime(now),
        details: { response: action, source: report.source, ...urlDetail(report.url) },
      },
      random,
    );
    const done =
      action === 'revoked'
        ? await store.deleteToken(record.id, isoTime(now), null, [event])
        : await store.markLeaked(record.id, isoTime(now), [event]);
    cache.evict(record.id);
    if (action === 'revoked') await revokeSelfRotation(record.id, record.username, report, source, now);
    return { ...found, action: done ? action : 'none' };
  }

  /**
   * Whoever holds a leaked secret token with `tokens:write` could have rotated it into a fresh one
   * that looks like a legitimate successor: a replacement made by the leaked token itself goes with it.
   * (A rotation by the owner, through the dashboard or another token, is kept.)
   */
  async function revokeSelfRotation(
    id: string,
    username: string,
    report: LeakReport,
    source: AuditSource,
    now: number,
  ): Promise<void> {
    const events = (await store.listAudit({ username, limit: 1000 })) ?? [];
    for (const rotation of events) {
      if (rotation.action !== 'token.rotate' || rotation.target !== id || rotation.actor !== `token:${id}`)
        continue;
      const replacement = rotation.details?.['replacement'];
      if (typeof replacement !== 'string') continue;
      const event = toAuditEvent(
        {
          action: 'token.leak',
          username,
          target: replacement,
          source,
          time: isoTime(now),
          details: {
            response: 'revoked',
            source: report.source,
            reason: 'rotated by the leaked token',
            leaked: id,
          },
        },
        random,
      );
      await store.deleteToken(replacement, isoTime(now), null, [event]);
      cache.evict(replacement);
    }
  }

  return { handle };
}
