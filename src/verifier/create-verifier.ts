import { loadConfig } from '../config.ts';
import type { Decision, DenialReason } from '../core/decision.ts';
import { TesseraError } from '../core/errors.ts';
import { parseToken, type Usage } from '../core/token-format.ts';
import { createServices } from '../services/create-services.ts';
import type { VerifyRequest } from '../services/verification-service.ts';

/** One request to decide, as a Node.js service sees it: the same fields `/auth/verify` reads. */
export type VerifyInput = VerifyRequest;

export interface Verifier {
  /** The decision `/auth/verify` would give. Rejects (fail closed) only when no decision can be had. */
  verify(input: VerifyInput): Promise<Decision>;
  close(): Promise<void>;
}

export interface EmbeddedVerifierOptions {
  /** `sqlite:<path>` or `postgres://…`; defaults to `<dataDir>/tessera.db`. */
  readonly databaseUrl?: string;
  /** The server's data folder: the signing keys of temporary tokens live there. Default `./data`. */
  readonly dataDir?: string;
  /** A `TESSERA_CONFIG` file: scopes, route map, rate limits. */
  readonly configFile?: string;
  /**
   * The server's `TESSERA_KEY_ENCRYPTION_KEY` when its signing keys live in the database (always on
   * PostgreSQL). Defaults to this process's `TESSERA_KEY_ENCRYPTION_KEY`.
   */
  readonly keyEncryptionKey?: string;
}

export interface RemoteVerifierOptions {
  /** Where a Tessera server listens, e.g. `http://127.0.0.1:3000`. */
  readonly serverUrl: string;
  /** How long an allowed decision is reused; refusals are never cached. Default 2000 ms. */
  readonly cacheTtlMs?: number;
  /** How long to wait for the server. Default 2000 ms. */
  readonly timeoutMs?: number;
}

/**
 * `createVerifier({ databaseUrl, dataDir })` decides in-process against the same store as the
 * server (and follows its changes); `createVerifier({ serverUrl })` asks a Tessera server.
 */
export async function createVerifier(
  options: EmbeddedVerifierOptions | RemoteVerifierOptions,
): Promise<Verifier> {
  if ('serverUrl' in options) return createRemoteVerifier(options);
  return createEmbeddedVerifier(options);
}

async function createEmbeddedVerifier(options: EmbeddedVerifierOptions): Promise<Verifier> {
  const config = loadConfig({
    TESSERA_DATA_DIR: options.dataDir,
    TESSERA_DATABASE_URL: options.databaseUrl,
    TESSERA_CONFIG: options.configFile,
    TESSERA_KEY_ENCRYPTION_KEY: options.keyEncryptionKey ?? process.env.TESSERA_KEY_ENCRYPTION_KEY,
    TESSERA_LOG_LEVEL: 'silent',
  });
  const services = await createServices(config);
  await services.start();
  return {
    verify: async (input) => (await services.verification.verify(input)).decision,
    close: () => services.close(),
  };
}

interface CachedDecision {
  readonly decision: Decision;
  readonly until: number;
}

const MALFORMED: Decision = {
  allowed: false,
  status: 401,
  reason: 'malformed',
  message: 'The access token is malformed',
};

const REASONS: readonly DenialReason[] = [
  'missing',
  'malformed',
  'invalid',
  'expired',
  'revoked',
  'scope',
  'url',
  'rate_limited',
];
const MAX_CACHED = 10_000;

function createRemoteVerifier(options: RemoteVerifierOptions): Verifier {
  const endpoint = new URL('/auth/verify', options.serverUrl);
  const ttl = options.cacheTtlMs ?? 2000;
  const timeout = options.timeoutMs ?? 2000;
  const cache = new Map<string, CachedDecision>();

  async function verify(input: VerifyInput): Promise<Decision> {
    const key = JSON.stringify([
      input.token,
      input.scope,
      input.service,
      input.origin,
      input.referer,
      input.method,
      pathOnly(input.path),
    ]);
    const cached = cache.get(key);
    if (cached && cached.until > Date.now()) return cached.decision;
    // What cannot be a token is refused here, as the server would: it never goes into a header.
    if (input.token && !parseToken(input.token)) return MALFORMED;
    const { decision, limited } = await ask(input);
    // A rate-limited token is asked about every time: a reused answer would skip its limit.
    if (decision.allowed && !limited && ttl > 0) {
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
      cache.set(key, { decision, until: Date.now() + ttl });
    }
    return decision;
  }

  async function ask(input: VerifyInput): Promise<{ decision: Decision; limited: boolean }> {
    const url = new URL(endpoint);
    if (input.scope !== undefined) url.searchParams.set('scope', input.scope);
    if (input.service !== undefined) url.searchParams.set('service', input.service);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: headersFor(input),
        signal: AbortSignal.timeout(timeout),
        redirect: 'error',
      });
    } catch {
      throw new TesseraError('unavailable', 'the Tessera server did not answer');
    }
    return { decision: await toDecision(response), limited: response.headers.has('x-rate-limit-limit') };
  }

  return { verify, close: async () => cache.clear() };
}

/** The token travels in a header, never in a URL the server might log. */
function headersFor(input: VerifyInput): Record<string, string> {
  const headers: Record<string, string> = { 'X-Original-Method': input.method ?? 'GET' };
  const path = pathOnly(input.path);
  if (path !== undefined) headers['X-Original-URI'] = path;
  if (input.token) headers.Authorization = `Bearer ${input.token}`;
  if (input.origin) headers.Origin = input.origin;
  if (input.referer) headers.Referer = input.referer;
  return headers;
}

async function toDecision(response: Response): Promise<Decision> {
  const { status, headers } = response;
  if (status === 200) {
    await response.body?.cancel();
    return {
      allowed: true,
      username: headers.get('x-tessera-username') ?? '',
      tokenId: headers.get('x-tessera-token-id'),
      usage: (headers.get('x-tessera-token-usage') ?? 'pk') as Usage,
      scopes: (headers.get('x-tessera-scopes') ?? '').split(' ').filter(Boolean),
    };
  }
  const reason = headers.get('x-tessera-reason') as DenialReason | null;
  if ((status !== 401 && status !== 403 && status !== 429) || !reason || !REASONS.includes(reason)) {
    await response.body?.cancel();
    throw new TesseraError('unavailable', `the Tessera server answered ${status}`);
  }
  const body = (await response.json().catch(() => ({}))) as { message?: unknown };
  const retryAfter = Number(headers.get('retry-after'));
  return {
    allowed: false,
    status,
    reason,
    message: typeof body.message === 'string' ? body.message : reason,
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {}),
  };
}

function pathOnly(path: string | undefined): string | undefined {
  return path?.split('?')[0];
}
