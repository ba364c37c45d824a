import { type AuditAction, type AuditEvent, auditSource, toAuditEvent } from '../core/audit.ts';
import type { Authorizer } from '../core/authorizer.ts';
import { TesseraError } from '../core/errors.ts';
import type { Clock, KeyRing, RandomSource } from '../core/ports.ts';
import type { ScopeCatalogue } from '../core/scopes.ts';
import type { InsertGuard, Store, TokenSortKey } from '../core/store.ts';
import {
  hasValidSignature,
  issueTemporaryToken,
  type ParsedToken,
  parseToken,
} from '../core/token-format.ts';
import {
  type CreateRequest,
  checkDelete,
  planCreate,
  planRotation,
  planTemporary,
  planUpdate,
  type TemporaryRequest,
  type UpdateRequest,
} from '../core/token-policy.ts';
import { assessPersistent, assessTemporary, type TokenCode } from '../core/token-status.ts';
import { isoTime, type TokenMetadata, type TokenRecord, toMetadata } from '../core/tokens.ts';
import { authorizeAccount } from './account-access.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { KeyedLock } from './keyed-lock.ts';
import type { TokenCache } from './token-cache.ts';
import { issueDefaultToken, issueToken } from './token-issuer.ts';

export interface TokenServiceDeps {
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly catalogue: ScopeCatalogue;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Positive verdicts by token string; changes through this service evict at once. */
  readonly cache: TokenCache;
  /** `lifecycle.maxLifetimeDays` of TESSERA_CONFIG, in days; no cap when null or absent. */
  readonly maxLifetimeDays?: number | null;
  /** A persistent token (or the one behind a tk) authorised a call to Tessera's own API: it is in use. */
  readonly onUse?: (tokenId: string, now: number) => void;
  /** `limits.tokensPerAccount`: live persistent tokens one account may hold; no limit when absent. */
  readonly tokensPerAccount?: number;
}

export interface Inspection {
  readonly code: TokenCode;
  readonly token?: ParsedToken;
  /** The pk/sk token's record when the token is valid. */
  readonly record?: TokenRecord;
  /** For a valid tk: what it may do now, its own scopes less any its parent has since lost. */
  readonly scopes?: readonly string[];
  /** For a valid tk: the persistent token behind it. */
  readonly parent?: TokenRecord;
}

/** Where an HTTP request came from, for the audit log. */
export interface RequestOrigin {
  readonly ip?: string | null;
}

/** What a cached verdict depends on: the ids whose change evicts it, and when it expires by itself. */
function dependencies(inspection: Inspection): { ids: string[]; expiresAt?: number } {
  const { token, record, parent } = inspection;
  if (token?.usage === 'tk') {
    const parentExpiry = parent?.expiresAt ? Date.parse(parent.expiresAt) : Number.POSITIVE_INFINITY;
    return { ids: parent ? [parent.id] : [], expiresAt: Math.min(token.expires * 1000, parentExpiry) };
  }
  if (!record) return { ids: [] };
  return { ids: [record.id], ...(record.expiresAt ? { expiresAt: Date.parse(record.expiresAt) } : {}) };
}

export interface ListOptions {
  readonly isDefault?: boolean;
  readonly usage?: 'pk' | 'sk';
  readonly sortBy: TokenSortKey;
  readonly limit: number;
  readonly start?: string;
}

export interface TokenPage {
  readonly tokens: TokenMetadata[];
  /** The `start` of the next page, when there is one. */
  readonly next?: string;
}

export interface TemporaryTokenResponse {
  readonly token: string;
  readonly issued_at: string;
  readonly expires: string;
  readonly expires_in: number;
}

export interface ScopeListing {
  readonly id: string;
  readonly description: string;
  readonly public?: true;
}

export type TokenService = ReturnType<typeof createTokenService>;

const MAX_UPDATE_ATTEMPTS = 5;

/** How long a verdict the store confirmed keeps passing while the store is unreachable. */
export const OUTAGE_GRACE_MS = 5000;

export function createTokenService(deps: TokenServiceDeps) {
  const { store, keyRing, catalogue, clock, random, cache } = deps;
  const updateLock = new KeyedLock();
  const maxLifetimeMs = deps.maxLifetimeDays ? deps.maxLifetimeDays * 86_400_000 : null;

  function audited(
    action: AuditAction,
    authorizer: Authorizer,
    origin: RequestOrigin,
    username: string,
    target: string,
    now: number,
    details?: Record<string, unknown>,
  ): AuditEvent[] {
    const source = auditSource(authorizer, origin.ip ?? null);
    return [
      toAuditEvent(
        { action, username, target, source, time: isoTime(now), ...(details ? { details } : {}) },
        random,
      ),
    ];
  }

  /** A valid token's verdict comes from the cache when it can; anything else is decided afresh. */
  async function inspect(raw: string): Promise<Inspection> {
    const now = clock.now();
    return cache.get(raw, now) ?? load(raw, now);
  }

  /** The cached verdict, if there is one: the hot path asks this first, without a promise. */
  function cached(raw: string, now: number): Inspection | undefined {
    return cache.get(raw, now);
  }

  /** Decides afresh from the store, and caches a valid verdict. */
  async function load(raw: string, now: number): Promise<Inspection> {
    const epoch = cache.epoch();
    let inspection: Inspection;
    try {
      inspection = await inspectUncached(raw, now);
    } catch (error) {
      // The store cannot answer: only a token the store confirmed moments ago still passes.
      const recent = cache.recent(raw, now, OUTAGE_GRACE_MS);
      if (recent) return recent;
      throw error;
    }
    if (inspection.code === 'TokenValid')
      cache.set(raw, inspection, { ...dependencies(inspection), epoch, now });
    return inspection;
  }

  async function inspectUncached(raw: string, now: number): Promise<Inspection> {
    const token = parseToken(raw);
    if (!token) return { code: 'TokenMalformed' };
    if (token.usage === 'tk') {
      // The signature first: a forged tk must not cost a store query.
      const key = keyRing.findKey(token.keyId);
      if (!key || !hasValidSignature(token, key)) return { code: 'TokenInvalid', token };
      const parent = token.parentId === undefined ? undefined : await store.findToken(token.parentId);
      const code = assessTemporary(token, key, parent, now);
      if (code !== 'TokenValid') return { code, token };
      const scopes = parent ? token.scopes.filter((scope) => parent.scopes.includes(scope)) : token.scopes;
      return { code, token, scopes, ...(parent ? { parent } : {}) };
    }
    const record = token.checksumValid ? await store.findToken(token.tokenId) : undefined;
    const code = assessPersistent(token, record, now);
    return code === 'TokenValid' && record ? { code, token, record } : { code, token };
  }

  /** Resolves an access token to its authority; anything but a valid token is 401. */
  async function authenticate(raw: string | undefined): Promise<Authorizer> {
    if (!raw) throw new TesseraError('unauthorized');
    const { code, token, record, scopes: effective } = await inspect(raw);
    if (code !== 'TokenValid' || !token) throw new TesseraError('unauthorized');
    const usedId = token.usage === 'tk' ? token.parentId : record?.id;
    if (usedId !== undefined) deps.onUse?.(usedId, clock.now());
    if (token.usage === 'tk') {
      const { username, scopes, expires, parentId } = token;
      return {
        kind: 'token',
        username,
        usage: 'tk',
        scopes: effective ?? scopes,
        tokenId: parentId ?? null,
        expires,
      };
    }
    if (!record) throw new TesseraError('unauthorized');
    const { username, usage, scopes, id, expiresAt } = record;
    // A tk minted by an expiring pk/sk must not promise a lifetime its parent will cut short.
    const expires = expiresAt === null ? null : Math.floor(Date.parse(expiresAt) / 1000);
    return { kind: 'token', username, usage, scopes, tokenId: id, expires };
  }

  function authorize(authorizer: Authorizer, username: string, scope: string): Promise<void> {
    return authorizeAccount(store, authorizer, username, scope);
  }

  async function list(authorizer: Authorizer, username: string, options: ListOptions): Promise<TokenPage> {
    await authorize(authorizer, username, 'tokens:read');
    const after = options.start === undefined ? undefined : decodeCursor(options.start);
    if (options.start !== undefined && !after) throw new TesseraError('start_invalid');
    const rows = await store.listTokens({
      username,
      sortBy: options.sortBy,
      limit: options.limit + 1,
      ...(options.isDefault === undefined ? {} : { isDefault: options.isDefault }),
      ...(options.usage === undefined ? {} : { usage: options.usage }),
      ...(after ? { after } : {}),
    });
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    const next =
      rows.length > options.limit && last
        ? encodeCursor({ value: last[options.sortBy], id: last.id })
        : undefined;
    return { tokens: page.map((record) => toMetadata(record)), ...(next ? { next } : {}) };
  }

  async function create(
    authorizer: Authorizer,
    username: string,
    request: CreateRequest,
    origin: RequestOrigin = {},
  ): Promise<TokenMetadata> {
    await authorize(authorizer, username, 'tokens:write');
    const now = clock.now();
    const plan = planCreate(request, { authorizer, catalogue, now, maxLifetimeMs });
    const { record, token } = issueToken({ username, plan, isDefault: false, now }, random);
    const limit = deps.tokensPerAccount;
    const outcome = await store.insertToken(
      record,
      audited('token.create', authorizer, origin, username, record.id, now, {
        usage: record.usage,
        scopes: record.scopes,
      }),
      { ...insertGuard(authorizer, now), ...(limit === undefined ? {} : { maxLiveTokens: limit }) },
    );
    if (outcome === 'authorizer_gone') throw new TesseraError('unauthorized');
    if (outcome === 'quota_reached') {
      throw new TesseraError('token_limit', `this account already holds ${limit} tokens, the most it may`);
    }
    return toMetadata(record, { secretToken: token });
  }

  /**
   * What the insert re-checks in its own transaction: the token that authorised it is still live
   * (it was checked when the request arrived, but may have been revoked since).
   */
  function insertGuard(authorizer: Authorizer, now: number): InsertGuard {
    return {
      now: isoTime(now),
      ...(authorizer.kind === 'token' && authorizer.tokenId ? { authorizerTokenId: authorizer.tokenId } : {}),
    };
  }

  async function createTemporary(
    authorizer: Authorizer,
    username: string,
    request: TemporaryRequest,
  ): Promise<TemporaryTokenResponse> {
    await authorize(authorizer, username, 'tokens:write');
    const claims = planTemporary(request, { authorizer, catalogue, now: clock.now() });
    const token = issueTemporaryToken(claims, keyRing.activeKey());
    // Never hand out a token the verifier would refuse as too long.
    if (!parseToken(token)) throw new TesseraError('invalid_field', 'too many scopes for a temporary token');
    return {
      token,
      issued_at: isoTime(claims.issuedAt * 1000),
      expires: isoTime(claims.expires * 1000),
      expires_in: claims.expires - claims.issuedAt,
    };
  }

  async function update(
    authorizer: Authorizer,
    username: string,
    id: string,
    request: UpdateRequest,
    origin: RequestOrigin = {},
  ): Promise<TokenMetadata> {
    await authorize(authorizer, username, 'tokens:write');
    return updateLock.run(id, async () => {
      for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
        const current = await findLive(username, id);
        const now = clock.now();
        const plan = planUpdate(current, request, { authorizer, catalogue, now, maxLifetimeMs });
        if (Object.keys(request).length === 0) return toMetadata(current);
        const modified = isoTime(Math.max(now, Date.parse(current.modified) + 1));
        const audit = audited('token.update', authorizer, origin, username, id, now, {
          fields: Object.keys(request).sort(),
        });
        const updated = await store.updateToken(id, current.version, { ...plan, modified }, audit);
        cache.evict(id);
        if (updated) return toMetadata(updated);
      }
      throw new TesseraError('conflict', 'the token is being changed by another request; try again');
    });
  }

  /** Deleting the default token refreshes it: the replacement is created in the same transaction. */
  async function remove(
    authorizer: Authorizer,
    username: string,
    id: string,
    origin: RequestOrigin = {},
  ): Promise<void> {
    await authorize(authorizer, username, 'tokens:write');
    const current = await findLive(username, id);
    checkDelete(current, authorizer);
    const now = clock.now();
    const replacement = current.isDefault
      ? issueDefaultToken({ username, catalogue, now }, random).record
      : null;
    const audit = replacement
      ? audited('token.refresh', authorizer, origin, username, id, now, { replacement: replacement.id })
      : audited('token.delete', authorizer, origin, username, id, now, { usage: current.usage });
    const deleted = await store.deleteToken(id, isoTime(now), replacement, audit);
    cache.evict(id);
    if (!deleted) throw new TesseraError('not_found');
  }

  /**
   * Issues a token with the same settings and lets the old one work for `gracePeriod` seconds more
   * (then it is refused as expired). A default token's replacement becomes the default.
   */
  async function rotate(
    authorizer: Authorizer,
    username: string,
    id: string,
    request: { readonly gracePeriod: number },
    origin: RequestOrigin = {},
  ): Promise<TokenMetadata> {
    await authorize(authorizer, username, 'tokens:write');
    return updateLock.run(id, async () => {
      const current = await findLive(username, id);
      const now = clock.now();
      const { plan, graceUntil } = planRotation(current, request.gracePeriod, {
        authorizer,
        catalogue,
        now,
        maxLifetimeMs,
      });
      const issued = issueToken({ username, plan, isDefault: current.isDefault, now }, random);
      const record = { ...issued.record, rotation: { replaces: id, graceUntil } };
      const audit = audited('token.rotate', authorizer, origin, username, id, now, {
        replacement: record.id,
        gracePeriod: request.gracePeriod,
        graceUntil,
      });
      const modified = isoTime(Math.max(now, Date.parse(current.modified) + 1));
      const rotated = await store.rotateToken(
        id,
        current.version,
        { expiresAt: graceUntil, modified },
        record,
        audit,
        insertGuard(authorizer, now),
      );
      cache.evict(id);
      if (!rotated) {
        // The authorising token was revoked (or expired) since the request arrived.
        if (authorizer.kind === 'token' && authorizer.tokenId && authorizer.tokenId !== id) {
          const still = await store.findToken(authorizer.tokenId);
          if (
            !still ||
            still.deletedAt !== null ||
            (still.expiresAt !== null && still.expiresAt <= isoTime(now))
          ) {
            throw new TesseraError('unauthorized');
          }
        }
        // A delete (which takes no lock) got in first: answer as a rotation after it would, 404.
        await findLive(username, id);
        throw new TesseraError('conflict', 'the token is being changed by another request; try again');
      }
      return toMetadata(record, { secretToken: issued.token });
    });
  }

  /** One live token of the account, as the list shows it. */
  async function get(authorizer: Authorizer, username: string, id: string): Promise<TokenMetadata> {
    await authorize(authorizer, username, 'tokens:read');
    return toMetadata(await findLive(username, id));
  }

  async function listScopes(authorizer: Authorizer, username: string): Promise<ScopeListing[]> {
    await authorize(authorizer, username, 'scopes:list');
    return [...catalogue.values()].map(({ id, description, public: isPublic }) =>
      isPublic ? { id, description, public: true } : { id, description },
    );
  }

  async function findLive(username: string, id: string): Promise<TokenRecord> {
    const record = await store.findToken(id);
    if (!record || record.username !== username || record.deletedAt !== null)
      throw new TesseraError('not_found');
    return record;
  }

  return {
    inspect,
    cached,
    load,
    inspectUncached,
    authenticate,
    list,
    create,
    createTemporary,
    update,
    remove,
    rotate,
    get,
    listScopes,
  };
}
