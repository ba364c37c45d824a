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

function status(value: string): Schema {
  return { type: 'object', required: ['status'], properties: { status: { const: value } } };
}

export const SCHEMAS: Readonly<Record<string, Schema>> = {
  Error: ERROR,
  TokenMetadata: TOKEN_METADATA,
  CreatedToken: { allOf: [schema('TokenMetadata'), { required: ['token'] }] },
  CreateTokenRequest: CREATE_REQUEST,
  TemporaryTokenRequest: TEMPORARY_REQUEST,
  UpdateTokenRequest: UPDATE_REQUEST,
  TemporaryToken: TEMPORARY_TOKEN,
  TokenRetrieval: RETRIEVAL,
  Scope: SCOPE,
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
  'X-Rate-Limit-Interval': integerHeader('Length of the rate-limit window in seconds (default 60).'),
  'X-Rate-Limit-Limit': integerHeader('Requests allowed per window for the account (default 100).'),
  'X-Rate-Limit-Reset': integerHeader('Unix time (seconds) at which the current window ends.'),
  'Retry-After': integerHeader('Seconds to wait before trying again.'),
};

export const SECURITY_SCHEMES: Readonly<Record<string, Schema>> = {
  accessToken: { type: 'apiKey', in: 'query', name: 'access_token' },
  bearerAuth: { type: 'http', scheme: 'bearer', description: '`Authorization: Bearer <token>`.' },
};
