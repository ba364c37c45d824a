import { isTesseraError } from '../core/errors.ts';
import type { TokenMetadata, TokenRecord } from '../core/tokens.ts';
import type { DashboardContext, Kit } from './kit.ts';
import type { TokenFormView } from './token-pages.ts';

// The create and edit token forms: what they send, what an edit changes, how a refusal is shown.

export interface TokenFields {
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls: readonly string[];
  /** The Expires field as sent: a UTC date and time, or empty. */
  readonly expiresAt: string;
}

/** A message for the form, and the field it is about when there is one. */
export interface FormError {
  readonly message: string;
  readonly field?: 'expiresAt';
}

export function readTokenForm(kit: Kit, c: DashboardContext): TokenFields {
  const form = kit.form(c);
  const allowedUrls = form
    .get('allowedUrls')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return {
    note: form.get('note').trim(),
    scopes: form.getAll('scopes'),
    allowedUrls,
    expiresAt: form.get('expiresAt').trim(),
  };
}

/**
 * Only what the form changed goes into the update, so the audit log names the fields the user
 * actually changed (and an untouched field is not validated anew).
 */
export function changedFields(token: TokenMetadata, fields: TokenFields): Record<string, unknown> {
  const urls = fields.allowedUrls.length ? fields.allowedUrls : null;
  const sameScopes =
    new Set(fields.scopes).size === token.scopes.length &&
    token.scopes.every((scope) => fields.scopes.includes(scope));
  const sameUrls = JSON.stringify(urls ?? []) === JSON.stringify(token.allowedUrls ?? []);
  return {
    ...(fields.note === token.note ? {} : { note: fields.note }),
    ...(sameScopes ? {} : { scopes: fields.scopes }),
    ...(sameUrls ? {} : { allowedUrls: urls }),
  };
}

export function urlsField(urls: readonly string[]): { allowedUrls?: readonly string[] } {
  return urls.length ? { allowedUrls: urls } : {};
}

export function formView(
  kit: Kit,
  input: TokenFields & { mode: 'create' | 'edit'; token?: TokenMetadata; error?: FormError },
): TokenFormView {
  const base = kit.base();
  return {
    mode: input.mode,
    action: input.token ? `${base}/account/tokens/${input.token.id}/edit` : `${base}/account/tokens`,
    note: input.note,
    scopes: input.scopes,
    allowedUrls: input.allowedUrls,
    expiresAt: input.expiresAt,
    catalogue: [...kit.services.catalogue.values()],
    publicOnly: input.token?.usage === 'pk',
    ...(input.error ? { notice: { kind: 'error', text: input.error.message } } : {}),
    ...(input.error?.field ? { invalid: input.error.field } : {}),
  };
}

/**
 * The change itself may still be refused for what the form cannot check beforehand (an operator's
 * lifetime cap on tokens, say): that refusal (422) goes on the form too, not on an error page.
 */
export async function refusedOnForm<T>(
  change: () => Promise<T>,
  rerender: (error: FormError) => Response,
): Promise<T | Response> {
  try {
    return await change();
  } catch (error) {
    if (!isTesseraError(error) || error.status !== 422) throw error;
    return validationFailure(error, rerender);
  }
}

export function validationFailure(error: unknown, rerender: (error: FormError) => Response): Response {
  if (!isTesseraError(error) || error.status >= 500 || error.status === 401) throw error;
  const expiry = expiryMessage(error.message);
  if (expiry) return rerender({ message: expiry, field: 'expiresAt' });
  return rerender({ message: sentence(error.message) });
}

/** The API's messages about the expiry, in the form's words: its field is "Expires", not `expiresAt`. */
function expiryMessage(message: string): string | undefined {
  if (message === 'the default token cannot expire') return 'The default public token cannot expire.';
  if (message === 'expiresAt must be an ISO 8601 time or null')
    return 'Enter the expiry as a UTC date and time.';
  return message.startsWith('expiresAt ')
    ? sentence(`the expiry ${message.slice('expiresAt '.length)}`)
    : undefined;
}

function sentence(text: string): string {
  const capitalised = text.charAt(0).toUpperCase() + text.slice(1);
  return capitalised.endsWith('.') ? capitalised : `${capitalised}.`;
}

/** Enough of a stored record for the update policy to judge the form before asking for the password. */
export function recordShape(token: TokenMetadata): TokenRecord {
  return {
    id: token.id,
    username: '',
    usage: token.usage,
    isDefault: token.default,
    note: token.note,
    scopes: token.scopes,
    allowedUrls: token.allowedUrls ?? null,
    extensions: {},
    rateLimit: token.rateLimit ?? null,
    expiresAt: token.expiresAt ?? null,
    tokenHash: '',
    token: token.token ?? null,
    created: token.created,
    modified: token.modified,
    deletedAt: null,
    version: 0,
  };
}
