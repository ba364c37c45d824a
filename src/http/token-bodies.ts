import { z } from 'zod';
import { TesseraError } from '../core/errors.ts';
import type { CreateRequest, TemporaryRequest, UpdateRequest } from '../core/token-policy.ts';
import { EXTENSION_FIELDS, type TokenExtensions } from '../core/tokens.ts';
import { MAX_ALLOWED_URL_LENGTH } from '../core/url-restrictions.ts';

/** What each field must be, in the words the caller sees when it is not. */
const FIELDS = {
  note: [z.string().max(256), 'note must be a string of at most 256 characters'],
  scopes: [z.array(z.string().max(64)).max(64), 'scopes must be an array of at most 64 strings'],
  allowedUrls: [
    z.array(z.string().max(MAX_ALLOWED_URL_LENGTH)).max(1000).nullable(),
    'allowedUrls must be an array of URL strings',
  ],
  resources: [z.array(z.string().min(1).max(256)).min(1).max(100).nullable(), 'resources are invalid'],
  allowedApplications: [
    z
      .array(z.strictObject({ platform: z.string().min(1).max(64), bundleId: z.string().min(1).max(256) }))
      .max(100)
      .nullable(),
    'allowedApplications must be an array of {"platform", "bundleId"} objects',
  ],
  allowedApis: [
    z.array(z.string().min(1).max(64)).max(100).nullable(),
    'allowedApis must be an array of strings',
  ],
  rateLimit: [
    z
      .strictObject({
        limit: z.number().int().min(1).max(1_000_000_000),
        interval: z.number().int().min(1).max(86_400),
      })
      .nullable(),
    'rateLimit must be {"limit": <1..1000000000>, "interval": <seconds, 1..86400>} or null',
  ],
  expiresAt: [z.iso.datetime({ offset: true }).nullable(), 'expiresAt must be an ISO 8601 time or null'],
} as const;

type FieldName = keyof typeof FIELDS;
type Fields = { -readonly [K in FieldName]?: z.infer<(typeof FIELDS)[K][0]> };

/** Metadata that only the server sets. Silently ignoring them would hide a client's mistake. */
const READ_ONLY = [
  'id',
  'usage',
  'client',
  'default',
  'token',
  'created',
  'modified',
  'lastUsed',
  'rotatedFrom',
  'rotatedTo',
  'graceUntil',
  'leakedAt',
];

function parseFields(body: unknown, options: { readonly nullable: boolean }): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TesseraError('bad_request', 'request body must be a JSON object');
  }
  const record = body as Record<string, unknown>;
  const readOnly = READ_ONLY.find((key) => Object.hasOwn(record, key));
  if (readOnly) throw new TesseraError('invalid_field', `${readOnly} cannot be set`);
  const fields: Record<string, unknown> = {};
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    if (!Object.hasOwn(record, name)) continue;
    const [schema, message] = FIELDS[name];
    const value = record[name];
    const nullNotAllowed = value === null && (!options.nullable || name === 'note' || name === 'scopes');
    const result = schema.safeParse(value);
    if (nullNotAllowed || !result.success)
      throw new TesseraError(name === 'resources' ? 'resources_invalid' : 'invalid_field', message);
    fields[name] = result.data;
  }
  return fields as Fields;
}

function extensionsOf(fields: Fields): TokenExtensions {
  const extensions: Record<string, unknown> = {};
  for (const name of EXTENSION_FIELDS) if (fields[name] != null) extensions[name] = fields[name];
  return extensions as TokenExtensions;
}

export function parseCreateBody(body: unknown): CreateRequest {
  const fields = parseFields(body, { nullable: false });
  return {
    note: fields.note ?? '',
    scopes: fields.scopes ?? [],
    allowedUrls: fields.allowedUrls ?? null,
    extensions: extensionsOf(fields),
    rateLimit: fields.rateLimit ?? null,
    expiresAt: fields.expiresAt ? normaliseTime(fields.expiresAt) : null,
  };
}

export function parseUpdateBody(body: unknown): UpdateRequest {
  const fields = parseFields(body, { nullable: true });
  const extensions = Object.fromEntries(
    EXTENSION_FIELDS.filter((name) => name in fields).map((name) => [name, fields[name]]),
  );
  return {
    ...(fields.note === undefined ? {} : { note: fields.note }),
    ...(fields.scopes === undefined ? {} : { scopes: fields.scopes }),
    ...('allowedUrls' in fields ? { allowedUrls: fields.allowedUrls ?? null } : {}),
    ...(Object.keys(extensions).length > 0
      ? { extensions: extensions as NonNullable<UpdateRequest['extensions']> }
      : {}),
    ...('rateLimit' in fields ? { rateLimit: fields.rateLimit ?? null } : {}),
    ...('expiresAt' in fields
      ? { expiresAt: fields.expiresAt ? normaliseTime(fields.expiresAt) : null }
      : {}),
  };
}

/** A body with `expires` asks for a temporary token (Mapbox's discriminator). */
export function isTemporaryRequest(body: unknown): boolean {
  return typeof body === 'object' && body !== null && Object.hasOwn(body, 'expires');
}

export function parseTemporaryBody(body: unknown): TemporaryRequest {
  const record = body as Record<string, unknown>;
  if (Object.hasOwn(record, 'allowedUrls')) {
    throw new TesseraError('invalid_field', 'temporary tokens cannot have allowedUrls');
  }
  const expires = typeof record.expires === 'string' ? Date.parse(record.expires) : Number.NaN;
  if (!z.iso.datetime({ offset: true }).safeParse(record.expires).success || Number.isNaN(expires)) {
    throw new TesseraError('invalid_field', 'expires must be an ISO 8601 time');
  }
  const scopes = FIELDS.scopes[0].safeParse(record.scopes);
  if (!scopes.success) throw new TesseraError('invalid_field', FIELDS.scopes[1]);
  return { expires, scopes: scopes.data };
}

/** `{"gracePeriod": <seconds, 0..604800>}` and nothing else. */
export function parseRotateBody(body: unknown): { readonly gracePeriod: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TesseraError('bad_request', 'request body must be a JSON object');
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => key !== 'gracePeriod');
  if (unknown !== undefined) throw new TesseraError('invalid_field', 'the body takes only gracePeriod');
  const grace = record.gracePeriod;
  if (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0 || grace > 604_800) {
    throw new TesseraError(
      'invalid_field',
      'gracePeriod must be an integer number of seconds from 0 to 604800',
    );
  }
  return { gracePeriod: grace };
}

/** UTC with milliseconds; a time past year 9999 (reachable through an offset) is refused. */
function normaliseTime(text: string): string {
  const iso = new Date(text).toISOString();
  if (!/^\d{4}-/.test(iso)) throw new TesseraError('invalid_field', FIELDS.expiresAt[1]);
  return iso;
}
