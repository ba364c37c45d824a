import { AUDIT_ACTIONS, AUDIT_CHANNELS } from '../core/audit.ts';
import { MAX_ALLOWED_URLS } from '../core/token-policy.ts';
import { MAX_ALLOWED_URL_LENGTH } from '../core/url-restrictions.ts';

/** The building blocks of the OpenAPI document: JSON Schemas, parameters, headers and helpers. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
export type Schema = { readonly [key: string]: Json };

/** Media type to `{schema, examples}`. */
export type Content = Readonly<Record<string, Schema>>;

export interface ResponseObject {
  readonly description: string;
  readonly headers?: Readonly<Record<string, Schema>>;
  readonly content?: Content;
}

export function ref(kind: 'schemas' | 'parameters' | 'headers' | 'securitySchemes', name: string): Schema {
  return { $ref: `#/components/${kind}/${name}` };
}

export function schema(name: string): Schema {
  return ref('schemas', name);
}

function arrayOf(items: Schema, extra: Schema = {}): Schema {
  return { type: 'array', items, ...extra };
}

function nullable(value: Schema, description: string): Schema {
  return { oneOf: [value, { type: 'null' }], description };
}

/** A JSON body; `examples` maps an example name to its value. */
export function json(body: Schema, examples: Readonly<Record<string, Json>> = {}): Content {
  const entries = Object.entries(examples).map(([name, value]) => [name, { value }] as const);
  return {
    'application/json': {
      schema: body,
      ...(entries.length ? { examples: Object.fromEntries(entries) } : {}),
    },
  };
}

/** An error answer: `{"message"}` with each possible message as an example. */
export function errorResponse(
  description: string,
  messages: readonly string[],
  headers: string[] = [],
): ResponseObject {
  const examples = Object.fromEntries(messages.map((message) => [exampleName(message), { message }]));
  return { description, ...headerRefs(headers), content: json(schema('Error'), examples) };
}

export function headerRefs(names: readonly string[]): {
  readonly headers?: Readonly<Record<string, Schema>>;
} {
  if (names.length === 0) return {};
  return { headers: Object.fromEntries(names.map((name) => [name, ref('headers', name)])) };
}

function exampleName(message: string): string {
  return (
    message
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'message'
  );
}

const STRINGS_1_64: Schema = { type: 'string', minLength: 1, maxLength: 64 };
const TIME: Schema = { type: 'string', format: 'date-time' };

const SCOPES: Schema = arrayOf(
  { type: 'string', maxLength: 64 },
  { maxItems: 64, description: 'Scope ids.' },
);
const ALLOWED_URLS: Schema = arrayOf(
  { type: 'string', minLength: 1, maxLength: MAX_ALLOWED_URL_LENGTH },
  {
    maxItems: MAX_ALLOWED_URLS,
    description:
      'Where browser requests may come from (checked against Origin/Referer): `https://app.example.com`, ' +
      '`app.example.com` (http or https), `*.example.com` (subdomains), optional port and path prefix.',
  },
);
const RESOURCES: Schema = arrayOf(
  { type: 'string', minLength: 1, maxLength: 256 },
  { minItems: 1, maxItems: 100 },
);
const APPLICATIONS: Schema = arrayOf(
  {
    type: 'object',
    required: ['platform', 'bundleId'],
    additionalProperties: false,
    properties: {
      platform: STRINGS_1_64,
      bundleId: { type: 'string', minLength: 1, maxLength: 256 },
    },
  },
  { maxItems: 100 },
);
const APIS: Schema = arrayOf(STRINGS_1_64, { maxItems: 100 });
const RATE_LIMIT: Schema = {
  type: 'object',
  description: 'Tessera extension: requests allowed per interval for this token.',
  required: ['limit', 'interval'],
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
    interval: { type: 'integer', minimum: 1, maximum: 86_400, description: 'Seconds.' },
  },
};
const STORED_NOT_ENFORCED = 'Stored and echoed (Mapbox SDK field); not enforced.';

const TOKEN_METADATA: Schema = {
  type: 'object',
  required: ['id', 'usage', 'client', 'default', 'note', 'scopes', 'created', 'modified'],
  properties: {
    id: { type: 'string', pattern: '^c[a-z0-9]{24}$', description: 'The token id (not the token).' },
    usage: { enum: ['pk', 'sk'], description: '`sk` when any scope is secret.' },
    client: { const: 'api' },
    default: { type: 'boolean', description: 'Whether this is the account’s default public token.' },
    note: { type: 'string' },
    scopes: arrayOf({ type: 'string' }),
    created: TIME,
    modified: TIME,
    allowedUrls: { ...ALLOWED_URLS, description: 'Present only when the token is restricted.' },
    resources: { ...RESOURCES, description: STORED_NOT_ENFORCED },
    allowedApplications: { ...APPLICATIONS, description: STORED_NOT_ENFORCED },
    allowedApis: { ...APIS, description: STORED_NOT_ENFORCED },
    rateLimit: RATE_LIMIT,
    expiresAt: { ...TIME, description: 'Tessera extension: past it the token is refused everywhere.' },
    lastUsed: {
      ...TIME,
      description:
        'Tessera extension, read-only: when a request with this token (or a temporary token it minted) was ' +
        'last allowed by forward-auth or the verifier, accurate to the usage flush interval (a few seconds). ' +
        'A call to Tessera’s own APIs authorised by the token counts too. Absent if never; refused requests do not count.',
    },
    rotatedFrom: {
      type: 'string',
      description:
        'Tessera extension, read-only: on a rotation’s new token, the id of the token it replaces.',
    },
    rotatedTo: {
      type: 'string',
      description: 'Tessera extension, read-only: on a rotated token, the id of its replacement.',
    },
    leakedAt: {
      ...TIME,
      description:
        'Tessera extension, read-only: when this public token was reported as leaked; it keeps working.',
    },
    graceUntil: {
      ...TIME,
      description:
        'Tessera extension, read-only, on both tokens of a rotation: when the old token stops working.',
    },
    token: {
      type: 'string',
      description:
        'Always present for `pk`; for `sk` only in the create response (the only time it is shown).',
    },
  },
};

const COMMON_WRITE_FIELDS = {
  note: { type: 'string', maxLength: 256 },
  scopes: SCOPES,
} as const;

const CREATE_REQUEST: Schema = {
  type: 'object',
  description:
    'Unknown fields are ignored. Read-only fields (id, usage, client, default, token, created, modified, ' +
    'lastUsed) are refused with 422. Without `expires` this creates a persistent token.',
  not: { required: ['expires'] },
  properties: {
    ...COMMON_WRITE_FIELDS,
    allowedUrls: ALLOWED_URLS,
    resources: { ...RESOURCES, description: `${STORED_NOT_ENFORCED} An invalid list answers 422.` },
    allowedApplications: { ...APPLICATIONS, description: STORED_NOT_ENFORCED },
    allowedApis: { ...APIS, description: STORED_NOT_ENFORCED },
    rateLimit: RATE_LIMIT,
    expiresAt: { ...TIME, description: 'Tessera extension: must lie in the future.' },
  },
};

const TEMPORARY_REQUEST: Schema = {
  type: 'object',
  description:
    'A body with `expires` asks for a temporary (`tk`) token. `allowedUrls` is refused; other fields are ignored.',
  required: ['expires', 'scopes'],
  not: { required: ['allowedUrls'] },
  properties: {
    expires: {
      ...TIME,
      description: 'After now and at most one hour ahead (and not after the authorizing tk).',
    },
    scopes: {
      ...SCOPES,
      description: 'A subset of the authorizing token’s scopes; may include secret scopes.',
    },
  },
};

const UPDATE_REQUEST: Schema = {
  type: 'object',
  description:
    'Absent fields stay as they are; `null` clears a field (not allowed for note and scopes). ' +
    'Unknown fields are ignored; read-only fields answer 422.',
  properties: {
    ...COMMON_WRITE_FIELDS,
    allowedUrls: nullable(ALLOWED_URLS, '`null` removes the restriction.'),
    resources: nullable(RESOURCES, STORED_NOT_ENFORCED),
    allowedApplications: nullable(APPLICATIONS, STORED_NOT_ENFORCED),
    allowedApis: nullable(APIS, STORED_NOT_ENFORCED),
    rateLimit: nullable(RATE_LIMIT, '`null` removes the per-token limit.'),
    expiresAt: nullable(TIME, 'Must lie in the future; `null` removes the expiry.'),
  },
};

const TEMPORARY_TOKEN: Schema = {
  type: 'object',
  required: ['token', 'issued_at', 'expires', 'expires_in'],
  properties: {
    token: { type: 'string', pattern: '^tk\\.' },
    issued_at: TIME,
    expires: TIME,
    expires_in: { type: 'integer', description: 'Seconds.' },
  },
};

const RETRIEVAL: Schema = {
  type: 'object',
  required: ['code'],
  properties: {
    code: { enum: ['TokenValid', 'TokenMalformed', 'TokenInvalid', 'TokenExpired', 'TokenRevoked'] },
    token: {
      description: 'What the token says about itself; absent for `TokenMalformed`.',
      oneOf: [
        {
          type: 'object',
          required: ['usage', 'user', 'authorization'],
          properties: {
            usage: { enum: ['pk', 'sk'] },
            user: { type: 'string' },
            authorization: { type: 'string', description: 'The token id.' },
          },
        },
        {
          type: 'object',
          required: ['usage', 'user', 'expires', 'created', 'scopes', 'client'],
          properties: {
            usage: { const: 'tk' },
            user: { type: 'string' },
            expires: TIME,
            created: TIME,
            scopes: arrayOf({ type: 'string' }),
            client: { const: 'api' },
          },
        },
      ],
    },
  },
};

const SCOPE: Schema = {
  type: 'object',
  required: ['id', 'description'],
  properties: {
    id: { type: 'string' },
    description: { type: 'string' },
    public: { const: true, description: 'Present (true) only on public scopes.' },
  },
};

const ERROR: Schema = {
  type: 'object',
  required: ['message'],
  properties: { message: { type: 'string', description: 'Mapbox’s wording where Mapbox has one.' } },
};

function countsBy(key: string, description: string): Schema {
  return {
    type: 'object',
    description,
    propertyNames: { description: key },
    additionalProperties: arrayOf(
      { type: 'integer', minimum: 0 },
      { description: 'One count per entry of `timestamps`.' },
    ),
  };
}

const USAGE_REPORT: Schema = {
  type: 'object',
  description:
    'The shape of Mapbox’s Analytics API, plus `refused`. Counts are per UTC hour or day, per token of ' +
    'the account (deleted tokens included); a temporary token counts for the token that minted it.',
  required: ['period', 'timestamps', 'services', 'refused'],
  additionalProperties: false,
  properties: {
    period: {
      type: 'array',
      prefixItems: [TIME, TIME],
      minItems: 2,
      maxItems: 2,
      description:
        '`[start, end]` of the report: the requested range widened to whole periods (UTC); `end` is exclusive.',
    },
    timestamps: arrayOf(TIME, {
      minItems: 1,
      maxItems: 744,
      description: 'The start of each period, oldest first.',
    }),
    services: countsBy(
      'A service: the route map’s (`styles`, `fonts`, `tiles`, …), the `service` a gateway names, or `api`',
      'Allowed requests per service. A service without allowed requests in the range is absent.',
    ),
    refused: countsBy(
      'A refusal reason: `scope`, `url` or `rate_limited`',
      'Refused requests that carried a valid token of the account, per reason. Requests without a valid ' +
        'token (401) belong to no token and are not counted.',
    ),
  },
};

const AUDIT_EVENT: Schema = {
  type: 'object',
  description: 'One change to the account or its tokens. Never holds a token, a password or a hash.',
  required: ['id', 'time', 'action', 'actor', 'channel', 'ip', 'target'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^e[a-z0-9]{24}$' },
    time: TIME,
    action: { type: 'string', enum: [...AUDIT_ACTIONS] },
    actor: {
      type: 'string',
      description: '`user:<username>` (dashboard), `token:<token id>` (API) or `operator` (command line).',
    },
    channel: { type: 'string', enum: [...AUDIT_CHANNELS] },
    ip: { type: ['string', 'null'], description: 'The client address; null for the command line.' },
    target: { type: 'string', description: 'The token id or username the action applies to.' },
    details: { type: 'object', description: 'Metadata of the change (never a secret).' },
  },
};

function status(value: string): Schema {
  return { type: 'object', required: ['status'], properties: { status: { const: value } } };
}

export const SCHEMAS: Readonly<Record<string, Schema>> = {
  RotateTokenRequest: {
    type: 'object',
    required: ['gracePeriod'],
    additionalProperties: false,
    properties: {
      gracePeriod: {
        type: 'integer',
        minimum: 0,
        maximum: 604800,
        description: 'Seconds the old token keeps working (up to 7 days); 0 ends it at once.',
      },
    },
  },
  Error: ERROR,
  TokenMetadata: TOKEN_METADATA,
  CreatedToken: { allOf: [schema('TokenMetadata'), { required: ['token'] }] },
  CreateTokenRequest: CREATE_REQUEST,
  TemporaryTokenRequest: TEMPORARY_REQUEST,
  UpdateTokenRequest: UPDATE_REQUEST,
  TemporaryToken: TEMPORARY_TOKEN,
  TokenRetrieval: RETRIEVAL,
  Scope: SCOPE,
  UsageReport: USAGE_REPORT,
  AuditEvent: AUDIT_EVENT,
  Health: status('ok'),
  Ready: status('ready'),
  NotReady: { allOf: [schema('Error'), status('unavailable')] },
  ServiceIndex: {
    type: 'object',
    required: ['name', 'description', 'links'],
    properties: {
      name: { const: 'Tessera' },
      description: { type: 'string' },
      links: { type: 'object', additionalProperties: { type: 'string' } },
    },
  },
};

function queryParameter(name: string, description: string, value: Schema): Schema {
  return { name, in: 'query', required: false, description, schema: value };
}

/** Every header forward-auth reads must come at most once: a repeated one answers 400. */
function headerParameter(name: string, description: string): Schema {
  return {
    name,
    in: 'header',
    required: false,
    description: `${description} Sent twice: 400.`,
    schema: { type: 'string' },
  };
}

const ISO_TIME = 'ISO 8601 date and time with seconds and `Z` or an offset (`2027-03-10T09:00:00Z`).';

export const PARAMETERS: Readonly<Record<string, Schema>> = {
  AccessToken: queryParameter(
    'access_token',
    'The access token, as Mapbox clients send it (the first value counts). `Authorization: Bearer` works ' +
      'too; a request carrying two different tokens answers 400.',
    { type: 'string' },
  ),
  Username: { name: 'username', in: 'path', required: true, schema: { type: 'string' } },
  TokenId: { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
  Default: queryParameter('default', '`true`: only the default token; `false`: all but the default token.', {
    enum: ['true', 'false'],
  }),
  Usage: queryParameter('usage', 'Only tokens of this usage.', { enum: ['pk', 'sk'] }),
  SortBy: queryParameter('sortby', 'Sort key, newest first.', {
    enum: ['created', 'modified'],
    default: 'created',
  }),
  Limit: queryParameter('limit', 'Page size.', { type: 'integer', minimum: 1, maximum: 100, default: 100 }),
  Start: queryParameter(
    'start',
    'Opaque cursor from the `Link` header of the previous page (not a token id).',
    { type: 'string' },
  ),
  AuditStart: queryParameter(
    'start',
    'The id of the last event of the previous page, as the `Link` header gives it.',
    { type: 'string', pattern: '^e[a-z0-9]{24}$' },
  ),
  UsageStart: queryParameter(
    'start',
    `${ISO_TIME} Widened down to the start of its period. Default: 24 hours (\`hour\`) or 30 days (\`day\`) ` +
      'before `end`.',
    TIME,
  ),
  UsageEnd: queryParameter(
    'end',
    `${ISO_TIME} Exclusive, widened up to the end of its period; must lie after \`start\`. Default: the end ` +
      'of the current period (so the current hour or day is included).',
    TIME,
  ),
  Period: queryParameter('period', 'The bucket size. A range may span at most 744 hours or 366 days.', {
    enum: ['hour', 'day'],
    default: 'day',
  }),
  UsageToken: queryParameter(
    'token',
    'A token id (not the token) of the account, deleted tokens included: report that token only. An id ' +
      'that is not the account’s answers 404 `Not found`.',
    { type: 'string' },
  ),
  VerifyScope: queryParameter(
    'scope',
    'The scope the original request needs. Without it (or when empty), the route ' +
      'map (`routes` in `TESSERA_CONFIG`, by default Mapbox-style paths) decides from the original method ' +
      'and path, and a path no route covers is refused (403).',
    { type: 'string' },
  ),
  VerifyService: queryParameter(
    'service',
    'The service the request is counted under in the usage statistics. Default: the route’s service, or ' +
      '`api` when `scope` is given.',
    { type: 'string' },
  ),
  RateLimitStatus: queryParameter(
    'rate_limit_status',
    '`403`: answer a rate-limited request with 403 instead of 429 (still with `X-Tessera-Reason: ' +
      'rate_limited` and `Retry-After`), for nginx, whose `auth_request` turns a 429 into a 500.',
    { enum: ['403'] },
  ),
  XOriginalUri: headerParameter(
    'X-Original-URI',
    'nginx `auth_request`: the original request URI (path and query). Its `access_token` query ' +
      'value is the token (repeated with another value: 400); its path is matched against the route map. When `X-Forwarded-Uri` or the ' +
      'Envoy path are given as well, they must be the same URI (else 400).',
  ),
  XOriginalMethod: headerParameter(
    'X-Original-Method',
    'nginx: the original method. When `X-Forwarded-Method` (or, in the Envoy form, the method of this ' +
      'request) is given as well, they must agree (else 400). Default: `GET`.',
  ),
  XForwardedUri: headerParameter(
    'X-Forwarded-Uri',
    'Traefik `ForwardAuth`, Caddy `forward_auth`: the original request URI.',
  ),
  XForwardedMethod: headerParameter('X-Forwarded-Method', 'Traefik, Caddy: the original method.'),
  XTesseraScope: headerParameter(
    'X-Tessera-Scope',
    'Envoy form only, set by the proxy: the scope the request needs (the query here is the client’s, so ' +
      'it cannot carry the scope). Without it (or when empty), the route map decides.',
  ),
  XTesseraService: headerParameter(
    'X-Tessera-Service',
    'Envoy form only, set by the proxy: the service to count the request under.',
  ),
  Origin: headerParameter(
    'Origin',
    'The original request’s `Origin`, checked against the token’s `allowedUrls`.',
  ),
  Referer: headerParameter(
    'Referer',
    'The original request’s `Referer`, checked against `allowedUrls` when there is no `Origin`.',
  ),
  OriginalPath: {
    name: 'originalPath',
    in: 'path',
    required: true,
    description:
      'Envoy `ext_authz` (HTTP mode, `path_prefix: /auth/verify`): the rest of the path, slashes included, ' +
      'and the query of this request are the original request’s.',
    schema: { type: 'string' },
  },
};

function integerHeader(description: string): Schema {
  return { description, schema: { type: 'integer' } };
}

export const HEADERS: Readonly<Record<string, Schema>> = {
  Link: {
    description:
      '`<url>; rel="next"` when there is a next page: absolute, on the public URL, without the access token.',
    schema: { type: 'string' },
  },
  'X-Rate-Limit-Interval': integerHeader(
    'Length of the rate-limit window in seconds (Tokens API default 60).',
  ),
  'X-Rate-Limit-Limit': integerHeader(
    'Requests allowed per window: for the account on the Tokens API (default 100); on forward-auth, the ' +
      'token’s `rateLimit` or the operator’s default for the scope.',
  ),
  'X-Rate-Limit-Remaining': integerHeader('Forward-auth: requests left in the current window.'),
  'X-Rate-Limit-Reset': integerHeader('Unix time (seconds) at which the current window ends.'),
  'Retry-After': integerHeader('Seconds to wait before trying again.'),
  'X-Tessera-Username': stringHeader('The account the token belongs to.'),
  'X-Tessera-Token-Id': stringHeader('The token id (of a `pk` or `sk`); absent for a temporary token.'),
  'X-Tessera-Token-Usage': { description: 'The kind of token.', schema: { enum: ['pk', 'sk', 'tk'] } },
  'X-Tessera-Scopes': {
    description:
      'The scopes the token may use, separated by spaces (for a tk: those its parent still holds).',
    schema: { type: 'string' },
  },
  'X-Tessera-Service': stringHeader('The service the request is counted under.'),
  'X-Tessera-Reason': {
    description: 'Why forward-auth refused the request.',
    schema: {
      enum: ['missing', 'malformed', 'invalid', 'expired', 'revoked', 'scope', 'url', 'rate_limited'],
    },
  },
  'WWW-Authenticate': stringHeader(
    '`Bearer realm="tessera"` without a token; `Bearer realm="tessera", error="invalid_token", ' +
      'error_description="…"` for a bad one; `Bearer realm="tessera", error="insufficient_scope"` for a ' +
      'missing scope.',
  ),
};

function stringHeader(description: string): Schema {
  return { description, schema: { type: 'string' } };
}

export const SECURITY_SCHEMES: Readonly<Record<string, Schema>> = {
  accessToken: { type: 'apiKey', in: 'query', name: 'access_token' },
  bearerAuth: { type: 'http', scheme: 'bearer', description: '`Authorization: Bearer <token>`.' },
};
