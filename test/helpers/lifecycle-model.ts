import { isDeepStrictEqual } from 'node:util';
import { type ApiResponse, api } from './api.ts';
import { verifyNginx, withToken } from './forward-auth.ts';
import type { ManualClock, TestServer } from './server.ts';

/**
 * A deliberately simple model of one account's tokens, for model-based tests: what each Tokens API,
 * retrieve and forward-auth request should answer, predicted from the documented rules (docs/api.md:
 * statuses, messages, the order of checks, rotation and expiry) and compared with what the real
 * server answers. It holds plain data only, so a search over serial orders can clone it.
 */

export const PUBLIC_SCOPES = ['styles:tiles', 'styles:read', 'fonts:read'] as const;
export const SECRET_SCOPES = ['tokens:read', 'tokens:write', 'styles:write', 'uploads:read'] as const;
/** The scopes of the admin token that authorises the model's requests. */
export const AUTHORIZER_SCOPES: readonly string[] = [...PUBLIC_SCOPES, ...SECRET_SCOPES];
/** Known to the catalogue but not held by the admin token (one public, one secret). */
export const UNHELD_SCOPES = ['datasets:read', 'map:write'] as const;
const PUBLIC_CATALOGUE: ReadonlySet<string> = new Set([
  'styles:tiles',
  'styles:read',
  'fonts:read',
  'datasets:read',
  'vision:read',
]);
const MAX_TEMPORARY_MS = 3_600_000;

export interface PersistentToken {
  readonly id: string;
  readonly token: string;
  readonly usage: 'pk' | 'sk';
  note: string;
  scopes: string[];
  allowedUrls: string[] | null;
  /** ms, or null when it never expires. */
  expiresAt: number | null;
  readonly created: number;
  modified: number;
  deleted: boolean;
  readonly rotatedFrom: string | null;
  rotatedTo: string | null;
  graceUntil: number | null;
}

export interface TemporaryToken {
  readonly token: string;
  readonly scopes: readonly string[];
  /** Unix seconds. */
  readonly exp: number;
  readonly iat: number;
  /** The persistent token behind it (the admin token's id for the admin). */
  readonly parentId: string;
}

export interface Model {
  readonly username: string;
  readonly adminId: string;
  now: number;
  tokens: PersistentToken[];
  temporary: TemporaryToken[];
}

export interface Real {
  readonly server: TestServer;
  readonly clock: ManualClock;
  readonly username: string;
  readonly adminToken: string;
}

/** A token of the model, by position: persistent tokens stay in the list when deleted. */
export interface Ref {
  readonly pool: 'persistent' | 'temporary';
  readonly index: number;
}
/** Who sends a Tokens API request: the admin token, or a token of the model. */
export type Actor = { readonly pool: 'admin' } | Ref;

export type Op =
  | {
      readonly kind: 'create';
      readonly by: Actor;
      readonly note: string;
      readonly scopes: readonly string[];
      readonly allowedUrls: readonly string[] | null;
      /** Seconds from now, or null for no expiry. */
      readonly expiresIn: number | null;
    }
  | {
      readonly kind: 'update';
      readonly by: Actor;
      readonly target: number;
      readonly note?: string;
      readonly scopes?: readonly string[];
      readonly allowedUrls?: readonly string[] | null;
      readonly expiresIn?: number | null;
    }
  | { readonly kind: 'delete'; readonly by: Actor; readonly target: number }
  | { readonly kind: 'rotate'; readonly by: Actor; readonly target: number; readonly gracePeriod: number }
  | {
      readonly kind: 'mint';
      readonly by: Actor;
      readonly scopes: readonly string[];
      /** Seconds from now. */
      readonly expiresIn: number;
    }
  | { readonly kind: 'list' }
  | { readonly kind: 'verify'; readonly target: Ref; readonly scope: string; readonly origin: string | null }
  | { readonly kind: 'retrieve'; readonly target: Ref }
  | { readonly kind: 'advance'; readonly ms: number };

export function describeOp(op: Op): string {
  const { kind, ...rest } = op;
  return `${kind}${JSON.stringify(rest)}`;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ---- what an op refers to -------------------------------------------------------------------

function persistentAt(model: Model, index: number): PersistentToken | undefined {
  return model.tokens.length === 0 ? undefined : model.tokens[index % model.tokens.length];
}

function temporaryAt(model: Model, index: number): TemporaryToken | undefined {
  return model.temporary.length === 0 ? undefined : model.temporary[index % model.temporary.length];
}

function refToken(model: Model, ref: Ref): PersistentToken | TemporaryToken | undefined {
  return ref.pool === 'persistent' ? persistentAt(model, ref.index) : temporaryAt(model, ref.index);
}

/** Whether the op names something that exists in the model (fast-check's `check`). */
export function applicable(model: Readonly<Model>, op: Op): boolean {
  switch (op.kind) {
    case 'list':
    case 'advance':
      return true;
    case 'verify':
    case 'retrieve':
      return refToken(model, op.target) !== undefined;
    default: {
      const actor = op.by.pool === 'admin' || refToken(model, op.by) !== undefined;
      return actor && (op.kind === 'create' || op.kind === 'mint' || model.tokens.length > 0);
    }
  }
}

// ---- sending -------------------------------------------------------------------------------

function createBody(model: Model, op: Extract<Op, { kind: 'create' }>): object {
  return {
    note: op.note,
    scopes: op.scopes,
    ...(op.allowedUrls === null ? {} : { allowedUrls: op.allowedUrls }),
    ...(op.expiresIn === null ? {} : { expiresAt: iso(model.now + op.expiresIn * 1000) }),
  };
}

function updateBody(model: Model, op: Extract<Op, { kind: 'update' }>): object {
  const body: Record<string, unknown> = {};
  if (op.note !== undefined) body['note'] = op.note;
  if (op.scopes !== undefined) body['scopes'] = op.scopes;
  if (op.allowedUrls !== undefined) body['allowedUrls'] = op.allowedUrls;
  if (op.expiresIn !== undefined)
    body['expiresAt'] = op.expiresIn === null ? null : iso(model.now + op.expiresIn * 1000);
  return body;
}

function actorToken(model: Model, real: Real, by: Actor): string {
  if (by.pool === 'admin') return real.adminToken;
  return (refToken(model, by) as { token: string }).token;
}

/** Sends the op's request (reading, never changing, the model). `advance` moves the clock instead. */
export function send(real: Real, model: Model, op: Op): Promise<ApiResponse | undefined> {
  const base = `/tokens/v2/${real.username}`;
  const target = (index: number): string => `${base}/${persistentAt(model, index)?.id}`;
  const as = (by: Actor) => ({ token: actorToken(model, real, by) });
  switch (op.kind) {
    case 'create':
      return api(real.server, 'POST', base, { ...as(op.by), json: createBody(model, op) });
    case 'update':
      return api(real.server, 'PATCH', target(op.target), { ...as(op.by), json: updateBody(model, op) });
    case 'delete':
      return api(real.server, 'DELETE', target(op.target), as(op.by));
    case 'rotate':
      return api(real.server, 'POST', `${target(op.target)}/rotate`, {
        ...as(op.by),
        json: { gracePeriod: op.gracePeriod },
      });
    case 'mint':
      return api(real.server, 'POST', base, {
        ...as(op.by),
        json: { expires: iso(model.now + op.expiresIn * 1000), scopes: op.scopes },
      });
    case 'list':
      return api(real.server, 'GET', `${base}?limit=100`, { token: real.adminToken });
    case 'verify':
      return verifyNginx(real.server, withToken('/model/resource', tokenOf(model, op.target)), {
        authQuery: `?scope=${encodeURIComponent(op.scope)}`,
        headers: op.origin === null ? {} : { Origin: op.origin },
      });
    case 'retrieve':
      return api(real.server, 'GET', '/tokens/v2', { token: tokenOf(model, op.target) });
    case 'advance':
      real.clock.advance(op.ms);
      return Promise.resolve(undefined);
  }
}

function tokenOf(model: Model, ref: Ref): string {
  return (refToken(model, ref) as { token: string }).token;
}

// ---- token states --------------------------------------------------------------------------

type Code = 'TokenValid' | 'TokenExpired' | 'TokenRevoked';

function persistentCode(token: PersistentToken, now: number): Code {
  if (token.deleted) return 'TokenRevoked';
  if (token.expiresAt !== null && token.expiresAt <= now) return 'TokenExpired';
  return 'TokenValid';
}

/** The admin token never changes; a model token is live while not deleted and not expired. */
function parentOf(model: Model, id: string): { live: boolean; scopes: readonly string[] } {
  if (id === model.adminId) return { live: true, scopes: AUTHORIZER_SCOPES };
  const parent = model.tokens.find((token) => token.id === id);
  if (!parent) throw new Error(`the model lost the parent ${id}`);
  return { live: persistentCode(parent, model.now) === 'TokenValid', scopes: parent.scopes };
}

/** A tk: expired from its `exp` on, revoked once its parent is deleted or expired; its parent's scopes cap it. */
function temporaryState(model: Model, token: TemporaryToken): { code: Code; scopes: readonly string[] } {
  if (token.exp * 1000 <= model.now) return { code: 'TokenExpired', scopes: [] };
  const parent = parentOf(model, token.parentId);
  if (!parent.live) return { code: 'TokenRevoked', scopes: [] };
  return { code: 'TokenValid', scopes: token.scopes.filter((scope) => parent.scopes.includes(scope)) };
}

interface Authority {
  readonly temporary: boolean;
  readonly scopes: readonly string[];
  /** Unix seconds, or null. */
  readonly expires: number | null;
  /** The persistent token behind it: what a tk it mints names as its parent. */
  readonly parentId: string;
}

/** The authority an actor holds, or undefined when its token is not valid (401). */
function authorityOf(model: Model, by: Actor): Authority | undefined {
  if (by.pool === 'admin')
    return { temporary: false, scopes: AUTHORIZER_SCOPES, expires: null, parentId: model.adminId };
  if (by.pool === 'persistent') {
    const token = persistentAt(model, by.index) as PersistentToken;
    if (persistentCode(token, model.now) !== 'TokenValid') return undefined;
    const expires = token.expiresAt === null ? null : Math.floor(token.expiresAt / 1000);
    return { temporary: false, scopes: token.scopes, expires, parentId: token.id };
  }
  const token = temporaryAt(model, by.index) as TemporaryToken;
  const state = temporaryState(model, token);
  if (state.code !== 'TokenValid') return undefined;
  return { temporary: true, scopes: state.scopes, expires: token.exp, parentId: token.parentId };
}

type Refusal = readonly [status: number, message: string];

/** Authentication (401), then the `tokens:write` scope (404), as every write checks them first. */
function writeRefusal(authority: Authority | undefined): Refusal | undefined {
  if (!authority) return [401, 'Unauthorized'];
  if (!authority.scopes.includes('tokens:write')) return [404, 'Not found'];
  return undefined;
}

function holds(authority: Authority, scopes: readonly string[]): boolean {
  return scopes.every((scope) => authority.scopes.includes(scope));
}

/** An expiring authorizer makes or changes no token to outlive it (compared in whole seconds). */
function outlives(authority: Authority, expiresAt: number | null): boolean {
  if (authority.expires === null) return false;
  return expiresAt === null || expiresAt > authority.expires * 1000;
}

const OUTLIVES = 'expiresAt may not be later than the expiration of the authorizing token';
const NOT_EVERY_SCOPE = 'the authorizing token does not hold every scope of this token';

// ---- judging -------------------------------------------------------------------------------

/**
 * Compares the real answer with the model's prediction and, when they agree, moves the model on.
 * Returns a description of the first divergence, or undefined.
 */
export function judge(model: Model, op: Op, response: ApiResponse | undefined): string | undefined {
  if (op.kind === 'advance') {
    model.now += op.ms;
    return undefined;
  }
  if (!response) return 'no response';
  switch (op.kind) {
    case 'create':
      return judgeCreate(model, op, response);
    case 'update':
      return judgeUpdate(model, op, response);
    case 'delete':
      return judgeDelete(model, op, response);
    case 'rotate':
      return judgeRotate(model, op, response);
    case 'mint':
      return judgeMint(model, op, response);
    case 'list':
      return judgeList(model, response);
    case 'verify':
      return judgeVerify(model, op, response);
    case 'retrieve':
      return judgeRetrieve(model, op, response);
  }
}

function error(response: ApiResponse, status: number, message: string): string | undefined {
  if (response.status === status && isDeepStrictEqual(response.body, { message })) return undefined;
  return `expected ${status} ${JSON.stringify({ message })}, got ${response.status} ${response.text}`;
}

function body(response: ApiResponse, status: number, expected: unknown): string | undefined {
  if (response.status === status && isDeepStrictEqual(response.body, expected)) return undefined;
  return `expected ${status} ${JSON.stringify(expected)}, got ${response.status} ${response.text}`;
}

/**
 * A metadata answer. `lastUsed` moves with the usage flush (real time, every few seconds), so the
 * model does not predict it: it only has to be a time that has already come.
 */
function metadataBody(response: ApiResponse, expected: object, now: number): string | undefined {
  const lastUsed = (response.body as { lastUsed?: unknown } | undefined)?.lastUsed;
  if (lastUsed !== undefined && !(typeof lastUsed === 'string' && Date.parse(lastUsed) <= now))
    return `lastUsed ${String(lastUsed)} is not a past time`;
  const actual = withoutLastUsed(response.body);
  if (response.status === 200 && isDeepStrictEqual(actual, expected)) return undefined;
  return `expected 200 ${JSON.stringify(expected)}, got ${response.status} ${response.text}`;
}

/** The metadata object the API shows for a token (`lastUsed` is left out by the caller). */
export function metadataOf(token: PersistentToken, options: { readonly withToken: boolean }): object {
  return {
    id: token.id,
    usage: token.usage,
    client: 'api',
    default: false,
    note: token.note,
    scopes: token.scopes,
    created: iso(token.created),
    modified: iso(token.modified),
    ...(token.allowedUrls === null ? {} : { allowedUrls: token.allowedUrls }),
    ...(token.expiresAt === null ? {} : { expiresAt: iso(token.expiresAt) }),
    ...(token.rotatedFrom === null ? {} : { rotatedFrom: token.rotatedFrom }),
    ...(token.rotatedTo === null ? {} : { rotatedTo: token.rotatedTo }),
    ...(token.graceUntil === null ? {} : { graceUntil: iso(token.graceUntil) }),
    ...(options.withToken ? { token: token.token } : {}),
  };
}

function withoutLastUsed(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const { lastUsed: _lastUsed, ...rest } = value as Record<string, unknown>;
  return rest;
}

function unheld(scopes: readonly string[]): boolean {
  return scopes.some((scope) => !AUTHORIZER_SCOPES.includes(scope));
}

function decodePayload(token: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64').toString('latin1'));
  } catch {
    return undefined;
  }
}

/** A newly issued pk/sk: a fresh id, and a token string naming the account and that id. */
function newTokenProblem(model: Model, answer: Record<string, unknown>, usage: string): string | undefined {
  const { id, token } = answer;
  if (typeof id !== 'string' || !/^c[a-z0-9]{24}$/.test(id)) return `bad id ${String(id)}`;
  if (model.tokens.some((known) => known.id === id)) return `id ${id} issued twice`;
  if (typeof token !== 'string' || !token.startsWith(`${usage}.`)) return `bad token for ${usage}`;
  const payload = decodePayload(token);
  if (payload?.['u'] !== model.username || payload['a'] !== id)
    return `token payload ${JSON.stringify(payload)}`;
  return undefined;
}

function createRefusal(model: Model, op: Extract<Op, { kind: 'create' }>): Refusal | undefined {
  const authority = authorityOf(model, op.by);
  const refusal = writeRefusal(authority);
  if (refusal || !authority) return refusal;
  if (authority.temporary) return [403, 'temporary tokens may only create temporary tokens'];
  if (unheld(op.scopes) || !holds(authority, op.scopes)) return [422, 'scopes are invalid'];
  const expiresAt = op.expiresIn === null ? null : model.now + op.expiresIn * 1000;
  if (expiresAt !== null && expiresAt <= model.now) return [422, 'expiresAt must be in the future'];
  if (outlives(authority, expiresAt)) return [422, OUTLIVES];
  return undefined;
}

function judgeCreate(model: Model, op: Extract<Op, { kind: 'create' }>, response: ApiResponse) {
  const refusal = createRefusal(model, op);
  if (refusal) return error(response, ...refusal);
  const answer = (response.body ?? {}) as Record<string, unknown>;
  const usage = op.scopes.some((scope) => !PUBLIC_CATALOGUE.has(scope)) ? 'sk' : 'pk';
  const problem = response.status === 200 ? newTokenProblem(model, answer, usage) : undefined;
  if (problem) return problem;
  const token: PersistentToken = {
    id: String(answer['id']),
    token: String(answer['token']),
    usage,
    note: op.note,
    scopes: [...op.scopes],
    allowedUrls: op.allowedUrls === null ? null : [...op.allowedUrls],
    expiresAt: op.expiresIn === null ? null : model.now + op.expiresIn * 1000,
    created: model.now,
    modified: model.now,
    deleted: false,
    rotatedFrom: null,
    rotatedTo: null,
    graceUntil: null,
  };
  const mismatch = metadataBody(response, metadataOf(token, { withToken: true }), model.now);
  if (!mismatch) model.tokens.push(token);
  return mismatch;
}

/** The refusal the model predicts for an update, if any (in the documented order). */
function updateRefusal(model: Model, token: PersistentToken, op: Extract<Op, { kind: 'update' }>) {
  const authority = authorityOf(model, op.by);
  const refusal = writeRefusal(authority);
  if (refusal || !authority) return refusal;
  if (token.deleted) return [404, 'Not found'] as const;
  if (authority.temporary) return [403, 'temporary tokens cannot update tokens'] as const;
  if (token.rotatedTo !== null)
    return [422, 'this token was rotated: change its replacement instead'] as const;
  if (op.scopes !== undefined && (unheld(op.scopes) || !holds(authority, op.scopes)))
    return [422, 'scopes are invalid'] as const;
  const scopes = op.scopes ?? token.scopes;
  if (!holds(authority, scopes)) return [403, NOT_EVERY_SCOPE] as const;
  if (token.usage === 'pk' && scopes.some((scope) => !PUBLIC_CATALOGUE.has(scope)))
    return [422, 'scopes are invalid'] as const;
  const expiresAt = typeof op.expiresIn === 'number' ? model.now + op.expiresIn * 1000 : op.expiresIn;
  if (typeof expiresAt === 'number' && expiresAt <= model.now)
    return [422, 'expiresAt must be in the future'] as const;
  if (expiresAt !== undefined && outlives(authority, expiresAt)) return [422, OUTLIVES] as const;
  return undefined;
}

function judgeUpdate(model: Model, op: Extract<Op, { kind: 'update' }>, response: ApiResponse) {
  const token = persistentAt(model, op.target) as PersistentToken;
  const refusal = updateRefusal(model, token, op);
  if (refusal) return error(response, refusal[0], refusal[1]);
  const next = { ...token };
  if (Object.keys(updateBody(model, op)).length > 0) {
    if (op.note !== undefined) next.note = op.note;
    if (op.scopes !== undefined) next.scopes = [...op.scopes];
    if (op.allowedUrls !== undefined) next.allowedUrls = op.allowedUrls === null ? null : [...op.allowedUrls];
    if (op.expiresIn !== undefined)
      next.expiresAt = op.expiresIn === null ? null : model.now + op.expiresIn * 1000;
    next.modified = Math.max(model.now, token.modified + 1);
  }
  const mismatch = metadataBody(response, metadataOf(next, { withToken: next.usage === 'pk' }), model.now);
  if (!mismatch) Object.assign(token, next);
  return mismatch;
}

function judgeDelete(model: Model, op: Extract<Op, { kind: 'delete' }>, response: ApiResponse) {
  const token = persistentAt(model, op.target) as PersistentToken;
  const authority = authorityOf(model, op.by);
  const refusal = writeRefusal(authority);
  if (refusal) return error(response, ...refusal);
  if (token.deleted) return error(response, 404, 'Not found');
  if (authority?.temporary && !holds(authority, token.scopes))
    return error(response, 403, 'a temporary token may only delete tokens within its own scopes');
  if (response.status !== 204 || response.text !== '')
    return `expected 204, got ${response.status} ${response.text}`;
  token.deleted = true;
  return undefined;
}

function rotateRefusal(model: Model, old: PersistentToken, by: Actor): Refusal | undefined {
  const authority = authorityOf(model, by);
  const refusal = writeRefusal(authority);
  if (refusal || !authority) return refusal;
  if (old.deleted) return [404, 'Not found'];
  if (authority.temporary) return [403, 'temporary tokens cannot rotate tokens'];
  if (old.rotatedTo !== null) return [422, 'this token was rotated already: rotate its replacement instead'];
  if (old.expiresAt !== null && old.expiresAt <= model.now)
    return [422, 'an expired token cannot be rotated'];
  if (!holds(authority, old.scopes)) return [403, NOT_EVERY_SCOPE];
  if (outlives(authority, old.expiresAt)) return [422, OUTLIVES];
  return undefined;
}

function judgeRotate(model: Model, op: Extract<Op, { kind: 'rotate' }>, response: ApiResponse) {
  const old = persistentAt(model, op.target) as PersistentToken;
  const refusal = rotateRefusal(model, old, op.by);
  if (refusal) return error(response, ...refusal);
  const answer = (response.body ?? {}) as Record<string, unknown>;
  const problem = response.status === 200 ? newTokenProblem(model, answer, old.usage) : undefined;
  if (problem) return problem;
  const graceUntil = Math.min(old.expiresAt ?? Number.POSITIVE_INFINITY, model.now + op.gracePeriod * 1000);
  const fresh: PersistentToken = {
    ...old,
    id: String(answer['id']),
    token: String(answer['token']),
    scopes: [...old.scopes],
    allowedUrls: old.allowedUrls === null ? null : [...old.allowedUrls],
    created: model.now,
    modified: model.now,
    rotatedFrom: old.id,
    rotatedTo: null,
    graceUntil,
  };
  const mismatch = metadataBody(response, metadataOf(fresh, { withToken: true }), model.now);
  if (mismatch) return mismatch;
  Object.assign(old, {
    expiresAt: graceUntil,
    rotatedTo: fresh.id,
    graceUntil,
    modified: Math.max(model.now, old.modified + 1),
  });
  model.tokens.push(fresh);
  return undefined;
}

/** The refusal the model predicts for minting a tk, if any: authentication, scope, then the claims. */
function mintRefusal(model: Model, op: Extract<Op, { kind: 'mint' }>, authority: Authority | undefined) {
  const refusal = writeRefusal(authority);
  if (refusal || !authority) return refusal;
  const expires = model.now + op.expiresIn * 1000;
  if (expires <= model.now) return [422, 'expires is in the past'] as const;
  if (expires > model.now + MAX_TEMPORARY_MS)
    return [422, 'expires is more than one hour in the future'] as const;
  if (authority.expires !== null && expires > authority.expires * 1000)
    return [422, 'expires may not be greater than the expiration of the authorizing token'] as const;
  if (!holds(authority, op.scopes)) return [422, 'scopes are invalid'] as const;
  return undefined;
}

function judgeMint(model: Model, op: Extract<Op, { kind: 'mint' }>, response: ApiResponse) {
  const authority = authorityOf(model, op.by);
  const refusal = mintRefusal(model, op, authority);
  if (refusal) return error(response, refusal[0], refusal[1]);
  const { parentId } = authority as Authority;
  const iat = Math.floor(model.now / 1000);
  const exp = Math.floor((model.now + op.expiresIn * 1000) / 1000);
  const answer = (response.body ?? {}) as Record<string, unknown>;
  const token = String(answer['token']);
  const mismatch = body(response, 200, {
    token,
    issued_at: iso(iat * 1000),
    expires: iso(exp * 1000),
    expires_in: exp - iat,
  });
  if (mismatch) return mismatch;
  const payload = decodePayload(token);
  const claims = { u: payload?.['u'], exp: payload?.['exp'], iat: payload?.['iat'], p: payload?.['p'] };
  if (!isDeepStrictEqual(claims, { u: model.username, exp, iat, p: parentId }))
    return `tk claims ${JSON.stringify(payload)}, expected parent ${parentId}`;
  model.temporary.push({ token, scopes: [...new Set(op.scopes)], exp, iat, parentId });
  return undefined;
}

/** Newest first, ties broken by id (descending), as the store sorts. */
export function listed(model: Model): PersistentToken[] {
  return model.tokens
    .filter((token) => !token.deleted)
    .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** The admin's list, less the admin and default tokens (which the model never touches). */
export function judgeList(model: Model, response: ApiResponse): string | undefined {
  if (response.status !== 200 || !Array.isArray(response.body))
    return `list: ${response.status} ${response.text}`;
  const known = new Set(model.tokens.map((token) => token.id));
  const actual = (response.body as Array<{ id: string; default: boolean }>)
    .filter((item) => item.id !== model.adminId && !(item.default && !known.has(item.id)))
    .map(withoutLastUsed);
  const expected = listed(model).map((token) => metadataOf(token, { withToken: token.usage === 'pk' }));
  if (isDeepStrictEqual(actual, expected)) return undefined;
  return `list: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

function allowedFrom(entries: readonly string[], origin: string | null): boolean {
  if (origin === null) return false;
  const url = new URL(origin);
  return entries.some((entry) =>
    entry.startsWith('*.') ? url.hostname.endsWith(entry.slice(1)) : entry === `${url.protocol}//${url.host}`,
  );
}

type Verdict =
  | {
      readonly status: 200;
      readonly id: string | null;
      readonly usage: string;
      readonly scopes: readonly string[];
    }
  | { readonly status: 401 | 403; readonly reason: string };

const REASONS: Readonly<Record<Exclude<Code, 'TokenValid'>, string>> = {
  TokenExpired: 'expired',
  TokenRevoked: 'revoked',
};

function verdictOf(model: Model, op: Extract<Op, { kind: 'verify' }>): Verdict {
  if (op.target.pool === 'temporary') {
    const state = temporaryState(model, temporaryAt(model, op.target.index) as TemporaryToken);
    if (state.code !== 'TokenValid') return { status: 401, reason: REASONS[state.code] };
    if (!state.scopes.includes(op.scope)) return { status: 403, reason: 'scope' };
    return { status: 200, id: null, usage: 'tk', scopes: state.scopes };
  }
  const token = persistentAt(model, op.target.index) as PersistentToken;
  const code = persistentCode(token, model.now);
  if (code !== 'TokenValid') return { status: 401, reason: REASONS[code] };
  if (!token.scopes.includes(op.scope)) return { status: 403, reason: 'scope' };
  if (token.allowedUrls && token.allowedUrls.length > 0 && !allowedFrom(token.allowedUrls, op.origin))
    return { status: 403, reason: 'url' };
  return { status: 200, id: token.id, usage: token.usage, scopes: token.scopes };
}

function judgeVerify(model: Model, op: Extract<Op, { kind: 'verify' }>, response: ApiResponse) {
  const expected = verdictOf(model, op);
  const header = (name: string): string | null => response.headers.get(name);
  const actual =
    response.status === 200
      ? {
          status: 200,
          id: header('x-tessera-token-id'),
          usage: header('x-tessera-token-usage'),
          scopes: (header('x-tessera-scopes') ?? '').split(' ').filter(Boolean),
          username: header('x-tessera-username'),
        }
      : { status: response.status, reason: header('x-tessera-reason') };
  const wanted = expected.status === 200 ? { ...expected, username: model.username } : expected;
  if (isDeepStrictEqual(actual, wanted)) return undefined;
  return `verify: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(actual)} ${response.text}`;
}

function judgeRetrieve(model: Model, op: Extract<Op, { kind: 'retrieve' }>, response: ApiResponse) {
  if (op.target.pool === 'temporary') {
    const token = temporaryAt(model, op.target.index) as TemporaryToken;
    return body(response, 200, {
      code: temporaryState(model, token).code,
      token: {
        usage: 'tk',
        user: model.username,
        expires: iso(token.exp * 1000),
        created: iso(token.iat * 1000),
        scopes: token.scopes,
        client: 'api',
      },
    });
  }
  const token = persistentAt(model, op.target.index) as PersistentToken;
  return body(response, 200, {
    code: persistentCode(token, model.now),
    token: { usage: token.usage, user: model.username, authorization: token.id },
  });
}
