import { type Decision, decide } from '../core/decision.ts';
import type { Clock } from '../core/ports.ts';
import { type CompiledRoute, matchRoute, normalisePath } from '../core/routes.ts';
import type { RateLimitSetting } from '../core/tokens.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter, RateLimitResult } from './rate-limiter.ts';
import type { Inspection, TokenService } from './token-service.ts';
import type { UsageRecorder } from './usage-recorder.ts';

/** One request to decide, as a gateway or a Node.js service sees it. */
export interface VerifyRequest {
  readonly token?: string | undefined;
  /** The scope the request needs; when absent, the route map decides from method and path. */
  readonly scope?: string | undefined;
  /** The service usage is counted under; defaults to the route's. */
  readonly service?: string | undefined;
  readonly origin?: string | undefined;
  readonly referer?: string | undefined;
  readonly method?: string | undefined;
  /** The original request path (a query is ignored). */
  readonly path?: string | undefined;
}

export interface Verdict {
  readonly decision: Decision;
  readonly service: string;
  readonly rateLimit?: RateLimitResult;
}

export interface VerificationDeps {
  readonly tokens: Pick<TokenService, 'cached' | 'load'>;
  readonly routes: readonly CompiledRoute[];
  readonly rateLimiter: RateLimiter;
  readonly scopeRateLimits: Readonly<Record<string, RateLimitSetting>>;
  readonly usage: UsageRecorder;
  readonly metrics: Metrics;
  readonly clock: Clock;
}

type Requirement =
  | { readonly scope: string | undefined; readonly service: string }
  | { readonly refusal: Decision };

/** Usage is stored and reported by service name: the same rule as for names in TESSERA_CONFIG. */
export const SERVICE_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

export type VerificationService = ReturnType<typeof createVerificationService>;

export function createVerificationService(deps: VerificationDeps) {
  const { tokens, routes, rateLimiter, scopeRateLimits, usage, metrics, clock } = deps;

  /**
   * Decides one request. Rejects only when the store cannot answer: the caller must then refuse
   * (503). A token whose verdict is cached is decided without waiting on anything.
   */
  function verify(request: VerifyRequest): Promise<Verdict> {
    if (request.service && !SERVICE_PATTERN.test(request.service)) {
      return Promise.reject(new TypeError('service must be 1-32 characters of a-z, 0-9, ".", "_" or "-"'));
    }
    const started = performance.now();
    const now = clock.now();
    const hit = request.token ? tokens.cached(request.token, now) : undefined;
    if (hit) return Promise.resolve(finish(judge(request, hit, now), started));
    return decideFromStore(request, now).then(
      (verdict) => finish(verdict, started),
      (error: unknown) => {
        metrics.storeErrors += 1;
        throw error;
      },
    );
  }

  function finish(verdict: Verdict, started: number): Verdict {
    const { decision } = verdict;
    metrics.decision(decision.allowed ? 'allowed' : decision.reason, (performance.now() - started) / 1000);
    return verdict;
  }

  async function decideFromStore(request: VerifyRequest, now: number): Promise<Verdict> {
    if (!request.token) return refuse(401, 'missing', 'An access token is required', 'unknown');
    return judge(request, await tokens.load(request.token, now), now);
  }

  function judge(request: VerifyRequest, inspection: Inspection, now: number): Verdict {
    // A bad token is 401 whatever the path; a good one on a path no route covers is 403.
    if (inspection.code !== 'TokenValid') return { decision: decide(inspection), service: 'unknown' };
    const requirement = requirementOf(request);
    if ('refusal' in requirement) {
      countUsage(inspection, requirement.refusal, 'unknown', now);
      return { decision: requirement.refusal, service: 'unknown' };
    }
    const { scope, service } = requirement;
    // One object shape for every call keeps this path monomorphic (a spread would not).
    let decision = decide({
      code: inspection.code,
      token: inspection.token,
      record: inspection.record,
      scopes: inspection.scopes,
      scope,
      origin: request.origin,
      referer: request.referer,
    });
    let rateLimit: RateLimitResult | undefined;
    if (decision.allowed) {
      rateLimit = applyRateLimit(inspection, scope, now);
      if (rateLimit && !rateLimit.allowed) {
        const retryAfter = Math.max(1, rateLimit.reset - Math.floor(now / 1000));
        decision = {
          allowed: false,
          status: 429,
          reason: 'rate_limited',
          message: 'Too Many Requests',
          retryAfter,
        };
      }
    }
    countUsage(inspection, decision, service, now);
    return rateLimit ? { decision, service, rateLimit } : { decision, service };
  }

  function requirementOf(request: VerifyRequest): Requirement {
    // An empty scope is no scope: a gateway variable left unset must not admit any valid token.
    if (request.scope) return { scope: request.scope, service: request.service || 'api' };
    const path = request.path === undefined ? undefined : normalisePath(request.path);
    if (path === undefined) {
      return { refusal: refusal(403, 'scope', 'No scope is configured for this request path') };
    }
    const route = matchRoute(routes, request.method ?? 'GET', path);
    if (!route) return { refusal: refusal(403, 'scope', 'No scope is configured for this request path') };
    return { scope: route.scope ?? undefined, service: request.service || route.service };
  }

  /** The token's own limit, else the operator's default for the scope the request needs. */
  function applyRateLimit(
    inspection: Inspection,
    scope: string | undefined,
    now: number,
  ): RateLimitResult | undefined {
    const owner = inspection.record ?? inspection.parent;
    const rule = owner?.rateLimit ?? (scope === undefined ? undefined : scopeRateLimits[scope]);
    if (!rule) return undefined;
    // A tk spends its parent's budget: minting temporary tokens must not multiply a limit.
    const key = owner ? `token:${owner.id}` : `tk:${inspection.token?.raw}`;
    return rateLimiter.hit(key, rule, now);
  }

  function countUsage(inspection: Inspection, decision: Decision, service: string, now: number): void {
    if (inspection.code !== 'TokenValid' || !inspection.token) return;
    const tokenId = inspection.token.usage === 'tk' ? inspection.token.parentId : inspection.token.tokenId;
    if (tokenId === undefined) return;
    usage.record(
      inspection.token.username,
      tokenId,
      service,
      decision.allowed ? 'allowed' : decision.reason,
      now,
    );
  }

  return { verify };
}

function refusal(status: 401 | 403, reason: 'missing' | 'scope', message: string): Decision {
  return { allowed: false, status, reason, message };
}

function refuse(status: 401 | 403, reason: 'missing' | 'scope', message: string, service: string): Verdict {
  return { decision: refusal(status, reason, message), service };
}
