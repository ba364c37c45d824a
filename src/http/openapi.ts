import { ERRORS } from '../core/errors.ts';
import { MAX_ALLOWED_URLS } from '../core/token-policy.ts';
import { FORWARD_AUTH_HEADERS } from './forward-auth.ts';
import { MAX_BODY_BYTES } from './json-body.ts';
import {
  type Content,
  errorResponse,
  HEADERS,
  headerRefs,
  type Json,
  json,
  PARAMETERS,
  type ResponseObject,
  ref,
  SCHEMAS,
  type Schema,
  SECURITY_SCHEMES,
  schema,
} from './openapi-schemas.ts';

interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly security?: ReadonlyArray<Readonly<Record<string, readonly string[]>>>;
  readonly parameters?: readonly Schema[];
  readonly requestBody?: { readonly required: boolean; readonly content: Content };
  readonly responses: Readonly<Record<string, ResponseObject>>;
}

type Messages = Readonly<Record<string, readonly string[]>>;

const RATE = ['X-Rate-Limit-Interval', 'X-Rate-Limit-Limit', 'X-Rate-Limit-Reset'];
const TOKEN_SECURITY = [{ accessToken: [] }, { bearerAuth: [] }];
const TWO_TOKENS = 'the request carries two different access tokens';

const STATUS_TEXT: Readonly<Record<string, string>> = {
  '400':
    'Two different access tokens in one request; for create and update, also a body that is not acceptable JSON.',
  '401':
    'No access token, a token that is not valid (malformed, forged, expired, revoked), or a ' +
    '`Bearer` header without a well-formed token.',
  '403':
    'A temporary token may not create persistent tokens or delete tokens beyond its scopes; no token may ' +
    'update a token holding scopes it lacks.',
  '404':
    '`No such user`: the account does not exist. `Not found`: the token belongs to another account, ' +
    'lacks the scope this operation needs, or (for one token) the token id is unknown or deleted.',
  '409': 'The token kept changing under concurrent updates.',
  '413': `The body is larger than ${MAX_BODY_BYTES} bytes.`,
  '415': 'The body is not `application/json`.',
  '422': 'A query parameter or body field is invalid.',
  '429': 'Too many Tokens API requests for this account in the current window.',
  '500': 'An unexpected failure (logged on the server).',
};

/** Error responses for the given statuses; the rate-limit headers come once the token is known. */
function errors(
  messages: Messages,
  options: { readonly rateLimited: boolean },
): Record<string, ResponseObject> {
  return Object.fromEntries(
    Object.entries(messages).map(([status, list]) => {
      const limited = status === '429' || (options.rateLimited && status !== '401' && status !== '500');
      const headers = status === '429' ? [...RATE, 'Retry-After'] : limited ? RATE : [];
      return [status, errorResponse(STATUS_TEXT[status] ?? status, list, headers)];
    }),
  );
}

function merge(...parts: Messages[]): Messages {
  const merged: Record<string, string[]> = {};
  for (const part of parts) {
    for (const [status, list] of Object.entries(part)) merged[status] = [...(merged[status] ?? []), ...list];
  }
  return merged;
}

const AUTHENTICATED: Messages = {
  '400': [TWO_TOKENS],
  '401': [ERRORS.unauthorized.message],
  '404': [ERRORS.no_such_user.message, ERRORS.not_found.message],
  '429': [ERRORS.rate_limited.message],
  '500': [ERRORS.internal.message],
};

const LIST_QUERY: Messages = {
  '422': [
    ERRORS.usage_invalid.message,
    'default must be true or false',
    'sortby must be created or modified',
    'limit must be an integer from 1 to 100',
    ERRORS.start_invalid.message,
  ],
};

const BODY: Messages = {
  '400': [
    'request body is not valid JSON',
    'request body is not valid UTF-8',
    'request body must be a JSON object',
    'request body has a duplicate key "scopes"',
    'request body must not contain the key "__proto__"',
    'request body must not contain the key "constructor"',
    'request body must not contain the key "prototype"',
    'request body is nested more than 32 levels deep',
    'request body must not contain NUL characters',
  ],
  '413': [ERRORS.payload_too_large.message],
  '415': [ERRORS.unsupported_media_type.message],
};

/** Field checks shared by create and update (token-bodies.ts and token-policy.ts). */
const FIELDS: Messages = {
  '422': [
    'id cannot be set',
    'note must be a string of at most 256 characters',
    'scopes must be an array of at most 64 strings',
    ERRORS.scopes_invalid.message,
    'allowedUrls must be an array of URL strings',
    `allowedUrls may contain at most ${MAX_ALLOWED_URLS} URLs`,
    'allowedUrls contains an invalid URL',
    ERRORS.resources_invalid.message,
    'allowedApplications must be an array of {"platform", "bundleId"} objects',
    'allowedApis must be an array of strings',
    'rateLimit must be {"limit": <1..1000000000>, "interval": <seconds, 1..86400>} or null',
    'expiresAt must be an ISO 8601 time or null',
    'expiresAt must be in the future',
    'expiresAt must be at most N days from now: the operator caps token lifetimes',
    'this account already holds N tokens, the most it may',
  ],
};

const TEMPORARY: Messages = {
  '403': ['temporary tokens may only create temporary tokens'],
  '422': [
    'temporary tokens cannot have allowedUrls',
    'expires must be an ISO 8601 time',
    ERRORS.expires_in_past.message,
    ERRORS.expires_too_far.message,
    ERRORS.expires_beyond_authorizer.message,
  ],
};

const UPDATE_ONLY: Messages = {
  '403': ['the authorizing token does not hold every scope of this token'],
  '409': ['the token is being changed by another request; try again'],
  '422': [
    'the default token cannot have allowedUrls',
    'the default token cannot expire',
    'this token was rotated: change its replacement instead',
  ],
};

const ROTATE_ONLY: Messages = {
  '403': [
    'the authorizing token does not hold every scope of this token',
    'temporary tokens cannot rotate tokens',
  ],
  '409': ['the token is being changed by another request; try again'],
  '422': [
    'gracePeriod must be an integer number of seconds from 0 to 604800',
    'the body takes only gracePeriod',
    'this token was rotated already: rotate its replacement instead',
    'an expired token cannot be rotated',
  ],
};

function ok(
  description: string,
  body: Schema,
  extra: { readonly headers?: string[]; readonly examples?: Record<string, Json> } = {},
): ResponseObject {
  return { description, ...headerRefs(extra.headers ?? []), content: json(body, extra.examples ?? {}) };
}

function params(...names: string[]): Schema[] {
  return names.map((name) => ref('parameters', name));
}

const EXAMPLE_ID = 'cijucimbe000brbkt48d0dhcx';
const EXAMPLE_PK: Json = {
  id: EXAMPLE_ID,
  usage: 'pk',
  client: 'api',
  default: false,
  note: 'My website',
  scopes: ['styles:read', 'fonts:read'],
  created: '2026-01-25T19:07:07.621Z',
  modified: '2026-01-25T19:07:07.621Z',
  allowedUrls: ['https://docs.example.com'],
  token: 'pk.eyJ1IjoiYWxpY2UiLCJhIjoiY2lqdWNpbWJlMDAwYnJia3Q0OGQwZGhjeCJ9.<secret+crc32>',
};

const RETRIEVE: Operation = {
  operationId: 'getToken',
  summary: 'Retrieve (inspect) the access token itself',
  description:
    'Needs no scope. Answers 200 with a `code` for any token string, valid or not. Not rate limited.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken'),
  responses: {
    '200': ok('The verdict on the token.', schema('TokenRetrieval'), {
      examples: {
        valid: { code: 'TokenValid', token: { usage: 'pk', user: 'alice', authorization: EXAMPLE_ID } },
        malformed: { code: 'TokenMalformed' },
      },
    }),
    ...errors(
      {
        '400': [TWO_TOKENS],
        '401': [ERRORS.unauthorized.message],
        '422': [ERRORS.access_token_required.message],
        '500': [ERRORS.internal.message],
      },
      { rateLimited: false },
    ),
  },
};

const LIST: Operation = {
  operationId: 'listTokens',
  summary: 'List the account’s tokens (scope `tokens:read`)',
  description:
    'Newest first. Secret tokens are listed without `token`. Follow `Link: <…>; rel="next"` for more pages.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'Default', 'Usage', 'SortBy', 'Limit', 'Start'),
  responses: {
    '200': ok(
      'One page of token metadata.',
      { type: 'array', items: schema('TokenMetadata') },
      {
        headers: ['Link', ...RATE],
        examples: { page: [EXAMPLE_PK] },
      },
    ),
    ...errors(merge(AUTHENTICATED, LIST_QUERY), { rateLimited: true }),
  },
};

const CREATE: Operation = {
  operationId: 'createToken',
  summary: 'Create a token, or a temporary token when the body has `expires` (scope `tokens:write`)',
  description:
    'Requested scopes must be held by the authorizing token; any secret scope makes an `sk`, whose `token` ' +
    'is shown only in this response. A temporary (`tk`) token may only create temporary tokens.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username'),
  requestBody: {
    required: true,
    content: json(
      { oneOf: [schema('CreateTokenRequest'), schema('TemporaryTokenRequest')] },
      {
        persistent: {
          note: 'My website',
          scopes: ['styles:read'],
          allowedUrls: ['https://docs.example.com'],
        },
        temporary: { expires: '2026-01-25T20:00:00.000Z', scopes: ['styles:read'] },
      },
    ),
  },
  responses: {
    '200': ok(
      'The new token (status 200, as Mapbox clients expect).',
      {
        oneOf: [schema('CreatedToken'), schema('TemporaryToken')],
      },
      { headers: RATE },
    ),
    ...errors(merge(AUTHENTICATED, BODY, FIELDS, TEMPORARY), { rateLimited: true }),
  },
};

const UPDATE: Operation = {
  operationId: 'updateToken',
  summary: 'Update a token (scope `tokens:write`)',
  description:
    'A public token stays public (secret scopes answer 422); the default token takes no allowedUrls and no ' +
    'expiry. The answer includes `token` for `pk` only.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'TokenId'),
  requestBody: {
    required: true,
    content: json(schema('UpdateTokenRequest'), { clearUrls: { note: 'renamed', allowedUrls: null } }),
  },
  responses: {
    '200': ok('The updated metadata.', schema('TokenMetadata'), { headers: RATE }),
    ...errors(merge(AUTHENTICATED, BODY, FIELDS, UPDATE_ONLY), { rateLimited: true }),
  },
};

const DELETE: Operation = {
  operationId: 'deleteToken',
  summary: 'Delete (revoke) a token (scope `tokens:write`)',
  description:
    'Temporary tokens minted from it stop working too. Deleting the default token creates a fresh default token.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'TokenId'),
  responses: {
    '204': { description: 'Deleted; no body.', ...headerRefs(RATE) },
    ...errors(
      merge(AUTHENTICATED, { '403': ['a temporary token may only delete tokens within its own scopes'] }),
      {
        rateLimited: true,
      },
    ),
  },
};

const ROTATE: Operation = {
  operationId: 'rotateToken',
  summary: 'Rotate a token with a grace period (scope `tokens:write`)',
  description:
    'Tessera extension. Issues a token with the same settings (the default token’s replacement becomes the ' +
    'default) and answers its metadata with `token`; the old token stays listed with `rotatedTo` and keeps ' +
    'working until `graceUntil` (now + gracePeriod), then is refused as expired.',
  tags: ['tokens'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'TokenId'),
  requestBody: {
    required: true,
    content: json(schema('RotateTokenRequest'), { oneDay: { gracePeriod: 86400 } }),
  },
  responses: {
    '200': ok('The new token, with `token`, `rotatedFrom` and `graceUntil`.', schema('CreatedToken'), {
      headers: RATE,
    }),
    ...errors(merge(AUTHENTICATED, BODY, ROTATE_ONLY), { rateLimited: true }),
  },
};

const SCOPES: Operation = {
  operationId: 'listScopes',
  summary: 'List the scopes the account may use (scope `scopes:list`)',
  tags: ['scopes'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username'),
  responses: {
    '200': ok(
      'Every scope; public scopes carry `public: true`.',
      { type: 'array', items: schema('Scope') },
      {
        headers: RATE,
      },
    ),
    ...errors(AUTHENTICATED, { rateLimited: true }),
  },
};

const USAGE_MESSAGES: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['400', 'Two different access tokens in one request.', [TWO_TOKENS]],
  [
    '401',
    'No access token, or a token that is not valid (malformed, forged, expired, revoked).',
    [ERRORS.unauthorized.message],
  ],
  [
    '404',
    '`No such user`: the account does not exist. `Not found`: the token belongs to another account or ' +
      'lacks `analytics:read`, or `token` is not the id of one of the account’s tokens.',
    [ERRORS.no_such_user.message, ERRORS.not_found.message],
  ],
  [
    '422',
    'A query parameter is invalid (checked before the account and the scope).',
    [
      'period must be hour or day',
      'start must be an ISO 8601 time',
      'end must be an ISO 8601 time',
      'start must be before end',
      'the range may span at most 744 hours',
      'the range may span at most 366 days',
    ],
  ],
  ['500', STATUS_TEXT['500'] ?? '', [ERRORS.internal.message]],
];

const USAGE: Operation = {
  operationId: 'getUsage',
  summary: 'Request counts per service and period (scope `analytics:read`)',
  description:
    'Tessera extension. Every decision of forward-auth and of the in-process verifier on a valid token of the ' +
    'account is counted per token, service, outcome and UTC hour; the counts reach the store in batches, ' +
    'so the last few seconds may be missing. `services` holds the allowed requests, `refused` the refused ' +
    'ones by reason. Not rate limited.',
  tags: ['usage'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'UsageStart', 'UsageEnd', 'Period', 'UsageToken'),
  responses: {
    '200': ok('One count per period for each service and refusal reason.', schema('UsageReport'), {
      examples: {
        hourly: {
          period: ['2027-03-10T07:00:00.000Z', '2027-03-10T09:00:00.000Z'],
          timestamps: ['2027-03-10T07:00:00.000Z', '2027-03-10T08:00:00.000Z'],
          services: { styles: [120, 87], fonts: [40, 31] },
          refused: { url: [3, 0], rate_limited: [0, 12] },
        },
      },
    }),
    ...Object.fromEntries(
      USAGE_MESSAGES.map(([status, description, messages]) => [status, errorResponse(description, messages)]),
    ),
  },
};

const AUDIT: Operation = {
  operationId: 'getAuditLog',
  summary: 'The account’s audit log, newest first (scope `audit:read`)',
  description:
    'Tessera extension. Every change to the account and its tokens, written in the transaction of the change; ' +
    'the database refuses to update or delete events. Follow `Link: <…>; rel="next"` for more pages. ' +
    'Not rate limited.',
  tags: ['audit'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken', 'Username', 'Limit', 'AuditStart'),
  responses: {
    '200': ok('One page of events.', { type: 'array', items: schema('AuditEvent') }, { headers: ['Link'] }),
    '401': errorResponse('No access token, or a token that is not valid.', [ERRORS.unauthorized.message]),
    '404': errorResponse(
      '`No such user`: the account does not exist. `Not found`: the token belongs to another account or ' +
        'lacks `audit:read`.',
      [ERRORS.no_such_user.message, ERRORS.not_found.message],
    ),
    '422': errorResponse('A bad `limit` or `start`.', [
      'limit must be an integer from 1 to 100',
      'start must be the id of an event of this account',
    ]),
  },
};

const GITHUB_LEAKS: Operation = {
  operationId: 'githubSecretScanning',
  summary: 'GitHub secret scanning partner endpoint',
  description:
    'Tessera extension, enabled by `leaks.github.publicKeys` in TESSERA_CONFIG. The body is GitHub’s array of ' +
    'matches, signed with ECDSA (P-256, SHA-256) under the key named by `Github-Public-Key-Identifier`; the ' +
    'signature (`Github-Public-Key-Signature`, base64 DER) is checked over the exact bytes before anything else. ' +
    'A leaked secret token is revoked at once, a public token flagged with `leakedAt`. See docs/leaks.md.',
  tags: ['leaks'],
  security: [],
  requestBody: {
    required: true,
    content: json(
      { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'object', required: ['token', 'type'] } },
      {
        match: [
          {
            token: 'sk.eyJ1…',
            type: 'tessera_secret_token',
            url: 'https://github.com/o/r/blob/…',
            source: 'content',
          },
        ],
      },
    ),
  },
  responses: {
    '200': ok('One label per match, in order.', {
      type: 'array',
      items: {
        type: 'object',
        required: ['token_raw', 'token_type', 'label'],
        properties: {
          token_raw: { type: 'string' },
          token_type: { type: 'string' },
          label: { type: 'string', enum: ['true_positive', 'false_positive'] },
        },
      },
    }),
    '400': errorResponse('Not JSON.', ['request body is not valid JSON']),
    '401': errorResponse('No valid signature.', [
      'signature missing or from an unknown key',
      'signature does not match the body',
    ]),
    '404': errorResponse('No GitHub keys are configured.', [ERRORS.not_found.message]),
    '422': errorResponse('Not a list of matches.', [
      'the body must be an array of 1 to 1000 matches',
      'each match needs a "token" string',
      'each match needs a "type" string',
    ]),
  },
};

const REPORT_LEAK: Operation = {
  operationId: 'reportLeak',
  summary: 'Report a leaked token (a secret or temporary token of the same account)',
  description:
    'Tessera extension. A secret token is revoked at once (`action: revoked`), a public token flagged with ' +
    '`leakedAt` and left working (`flagged`); `none` when that was done already. Recorded in the audit log.',
  tags: ['leaks'],
  security: TOKEN_SECURITY,
  parameters: params('AccessToken'),
  requestBody: {
    required: true,
    content: json(
      {
        type: 'object',
        required: ['token'],
        additionalProperties: false,
        properties: { token: { type: 'string' }, url: { type: 'string', maxLength: 2048 } },
      },
      { report: { token: 'sk.eyJ1…', url: 'https://pastebin.example/abc' } },
    ),
  },
  responses: {
    '200': ok('What was done.', {
      type: 'object',
      required: ['id', 'action'],
      properties: {
        id: { type: 'string' },
        action: { type: 'string', enum: ['revoked', 'flagged', 'none'] },
      },
    }),
    '401': errorResponse('No valid access token.', [ERRORS.unauthorized.message]),
    '403': errorResponse('A public token cannot report.', [
      'reporting a leak takes a secret (sk) or temporary token of the account',
    ]),
    '422': errorResponse('Not a token of this account, or a bad body.', [
      'token is not a token of this account',
      'the body takes only token and url',
      'token must be the leaked token',
      'url must be a string of at most 2048 characters',
    ]),
    '429': errorResponse('Too many reports.', [ERRORS.rate_limited.message]),
  },
};

const PROMETHEUS_EXAMPLE = [
  '# HELP tessera_decisions_total Verification decisions by outcome (allowed or the refusal reason).',
  '# TYPE tessera_decisions_total counter',
  'tessera_decisions_total{outcome="allowed"} 1042',
  'tessera_decisions_total{outcome="url"} 3',
  '# HELP tessera_verify_duration_seconds Time to reach a verification decision.',
  '# TYPE tessera_verify_duration_seconds histogram',
  'tessera_verify_duration_seconds_bucket{le="0.00005"} 1001',
  '…',
  'tessera_verify_duration_seconds_bucket{le="+Inf"} 1045',
  'tessera_verify_duration_seconds_sum 0.061',
  'tessera_verify_duration_seconds_count 1045',
  '…',
  '',
].join('\n');

const METRICS: Operation = {
  operationId: 'getMetrics',
  summary: 'Prometheus metrics',
  description:
    'Unauthenticated (expose it to the scraper only): verification decisions by outcome ' +
    '(`tessera_decisions_total`), the verification latency histogram (`tessera_verify_duration_seconds`), ' +
    'verdict cache hits, misses, ratio and size (`tessera_cache_*`), seconds since the last usage flush ' +
    '(`tessera_usage_flush_lag_seconds`), usage counts dropped (`tessera_usage_dropped_total`) and failed ' +
    'store operations (`tessera_store_errors_total`). Counters are per process, since it started.',
  tags: ['service'],
  security: [],
  responses: {
    '200': {
      description: 'The Prometheus text exposition format 0.0.4.',
      content: { 'text/plain': { schema: { type: 'string' }, example: PROMETHEUS_EXAMPLE } },
    },
  },
};

const VERIFY_HEADERS = FORWARD_AUTH_HEADERS;
const VERIFY_RATE = [
  'X-Rate-Limit-Interval',
  'X-Rate-Limit-Limit',
  'X-Rate-Limit-Remaining',
  'X-Rate-Limit-Reset',
];

const VERIFY_RESPONSES: Readonly<Record<string, ResponseObject>> = {
  '200': {
    description:
      'Allowed: let the request through. Empty body. The identity headers are for the upstream (copy them ' +
      'with `auth_request_set`, `authResponseHeaders`, `copy_headers`, …); the rate-limit headers come ' +
      'when a limit applies to the token.',
    ...headerRefs([
      'X-Tessera-Username',
      'X-Tessera-Token-Id',
      'X-Tessera-Token-Usage',
      'X-Tessera-Scopes',
      'X-Tessera-Service',
      ...VERIFY_RATE,
    ]),
  },
  '400': errorResponse(
    'The request is ambiguous: two different tokens (original URI and `Authorization: Bearer`), gateway ' +
      'headers (or the Envoy path and method) that name different original URIs or methods, a header ' +
      'Tessera reads sent more than once, an original URI that cannot be parsed, a `scope` or `service` ' +
      'that is not a name, or (when the route map decides) no original method.',
    [
      'The request carries two different access tokens',
      'The gateway headers name two different original request URIs',
      'The gateway headers name two different original request methods',
      'The original request URI cannot be parsed',
      'The gateway sent no original request method (X-Original-Method or X-Forwarded-Method)',
      'scope must be a scope name such as styles:read',
      'service must be 1-32 characters of a-z, 0-9, ".", "_" or "-"',
      ...VERIFY_HEADERS.map((name) => `The ${name} header is given more than once`),
    ],
  ),
  '401': errorResponse(
    'No token, or a token that is not valid. `X-Tessera-Reason`: `missing`, `malformed` (also a `Bearer` ' +
      'header without a token), `invalid`, `expired` or `revoked`.',
    [
      'An access token is required',
      'The access token is malformed',
      'The access token is invalid',
      'The access token has expired',
      'The access token has been revoked',
    ],
    ['X-Tessera-Reason', 'WWW-Authenticate'],
  ),
  '403': errorResponse(
    'A valid token that may not make this request. `X-Tessera-Reason`: `scope` (the token lacks the ' +
      'scope, or no scope is given and no route matches the path: Tessera fails closed) or `url` (the ' +
      'token’s `allowedUrls` do not match `Origin`, or `Referer` without `Origin`, or neither is sent). ' +
      'With `rate_limit_status=403`, also a rate-limited request: `X-Tessera-Reason: rate_limited`, ' +
      'message `Too Many Requests`, with `Retry-After` and the rate-limit headers.',
    [
      'This request requires a token with styles:read scope',
      'No scope is configured for this request path',
      'This token is not allowed from this URL',
    ],
    ['X-Tessera-Reason', 'WWW-Authenticate', 'Retry-After', ...VERIFY_RATE],
  ),
  '429': errorResponse(
    'The token’s rate limit (its own `rateLimit`, or the operator’s default for the scope) is used up. ' +
      '`X-Tessera-Reason: rate_limited`.',
    [ERRORS.rate_limited.message],
    ['X-Tessera-Reason', 'Retry-After', ...VERIFY_RATE],
  ),
  '503': errorResponse(
    'The store could not answer: the request is refused (never admitted).',
    [ERRORS.unavailable.message],
    ['Retry-After'],
  ),
};

const VERIFY_DESCRIPTION =
  'Forward-auth for nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth` and Envoy ' +
  '`ext_authz`: decides whether the gateway may pass on the original request, which it describes in ' +
  'headers. The token is the `access_token` of the original URI, or `Authorization: Bearer` ' +
  '(two different ones answer 400). The scope needed is the operator’s: the `scope` parameter (Envoy: ' +
  '`X-Tessera-Scope`), else the route map. Then the token’s URL restrictions and rate limit apply, and ' +
  'the decision is counted in the usage statistics. Fails closed: anything that cannot be decided is ' +
  'refused. Any method is answered (`HEAD` without a body); every answer carries ' +
  '`Cache-Control: no-store`, refusals a `{"message"}` body. See docs/gateways/ for complete gateway ' +
  'configurations.';

const VERIFY_METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;

/** The same decision for every method: the gateway may keep the original request's method. */
function verifyOperations(
  operationId: string,
  summary: string,
  description: string,
  parameters: readonly Schema[],
): Record<string, Operation> {
  return Object.fromEntries(
    VERIFY_METHODS.map((method) => [
      method,
      {
        operationId:
          method === 'get' ? operationId : `${operationId}${method[0]?.toUpperCase()}${method.slice(1)}`,
        summary,
        description,
        tags: ['forward-auth'],
        security: [{}, { bearerAuth: [] }],
        parameters,
        responses: VERIFY_RESPONSES,
      },
    ]),
  );
}

const GATEWAY_HEADERS = params(
  'XOriginalUri',
  'XOriginalMethod',
  'XForwardedUri',
  'XForwardedMethod',
  'Origin',
  'Referer',
);

const VERIFY = verifyOperations(
  'verifyRequest',
  'Forward-auth: decide a proxied request',
  VERIFY_DESCRIPTION,
  [...params('VerifyScope', 'VerifyService', 'RateLimitStatus'), ...GATEWAY_HEADERS],
);

const VERIFY_ENVOY = verifyOperations(
  'verifyEnvoyRequest',
  'Forward-auth, Envoy form: the original path and query follow /auth/verify',
  `${VERIFY_DESCRIPTION} In this form the path after \`/auth/verify\` and the query are the original ` +
    'request’s, so the scope and service come from `X-Tessera-Scope` and `X-Tessera-Service` (or the ' +
    'route map), and the original method is the method of this request.',
  [...params('OriginalPath', 'XTesseraScope', 'XTesseraService'), ...GATEWAY_HEADERS],
);

function service(operationId: string, summary: string, body: Schema): Operation {
  return { operationId, summary, tags: ['service'], security: [], responses: { '200': ok(summary, body) } };
}

const READINESS: Operation = {
  ...service('getReadiness', 'Readiness: the store is reachable', schema('Ready')),
  responses: {
    '200': ok('Ready.', schema('Ready')),
    '503': {
      description: 'The store is not reachable.',
      ...headerRefs(['Retry-After']),
      content: json(schema('NotReady'), {
        unavailable: { status: 'unavailable', message: 'the store is not reachable' },
      }),
    },
  },
};

const DESCRIPTION = [
  'Tessera’s Tokens API v2 and Scopes API, wire-compatible with Mapbox’s (errors are `{"message"}` with',
  'Mapbox’s statuses and wording), its usage statistics, and forward-auth for API gateways.',
  'Authenticate with `?access_token=` or `Authorization: Bearer`.',
  'Every API answer (`/tokens/`, `/scopes/`, `/usage/`) allows any origin (`Access-Control-Allow-Origin: *`)',
  'and exposes `Link`, `Retry-After` and the `X-Rate-Limit-*` headers; preflight `OPTIONS` is answered for',
  'the API paths. Tokens and Scopes API requests are limited per account (100 per minute by default).',
  'See docs/api.md for the full reference.',
].join(' ');

/** The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. */
export function openApiDocument(publicUrl: string): object {
  return {
    openapi: '3.1.0',
    info: { title: 'Tessera', version: '0.1.0', description: DESCRIPTION },
    servers: [{ url: publicUrl }],
    tags: [
      { name: 'tokens', description: 'Tokens API v2' },
      { name: 'scopes', description: 'Scopes API v1' },
      { name: 'usage', description: 'Usage statistics (Tessera extension)' },
      { name: 'audit', description: 'Audit log (Tessera extension)' },
      { name: 'leaks', description: 'Leak response (Tessera extension)' },
      {
        name: 'forward-auth',
        description: 'Decisions for API gateways (answered outside the web framework)',
      },
      { name: 'service', description: 'Service index, health and this document' },
    ],
    paths: {
      '/': { get: service('getServiceIndex', 'Service index', schema('ServiceIndex')) },
      '/healthz': { get: service('getHealth', 'Liveness', schema('Health')) },
      '/readyz': { get: READINESS },
      '/metrics': { get: METRICS },
      '/openapi.json': { get: service('getOpenApiDocument', 'This OpenAPI document', { type: 'object' }) },
      '/tokens/v2': { get: RETRIEVE },
      '/tokens/v2/{username}': { get: LIST, post: CREATE },
      '/tokens/v2/{username}/{id}': { patch: UPDATE, delete: DELETE },
      '/tokens/v2/{username}/{id}/rotate': { post: ROTATE },
      '/scopes/v1/{username}': { get: SCOPES },
      '/usage/v1/{username}': { get: USAGE },
      '/audit/v1/{username}': { get: AUDIT },
      '/leaks/v1/github': { post: GITHUB_LEAKS },
      '/leaks/v1/report': { post: REPORT_LEAK },
      '/auth/verify': VERIFY,
      '/auth/verify/{originalPath}': VERIFY_ENVOY,
    },
    components: {
      schemas: SCHEMAS,
      parameters: PARAMETERS,
      headers: HEADERS,
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
