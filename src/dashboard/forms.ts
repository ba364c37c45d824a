import type { Context } from 'hono';
import { TesseraError } from '../core/errors.ts';

/** Dashboard forms are small: names, scopes, a few URLs. Anything larger is refused before parsing. */
export const MAX_FORM_BYTES = 32 * 1024;

export interface Form {
  get(name: string): string;
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Every field but the listed ones, in order: what a confirmation page carries through. */
  entries(except: readonly string[]): [string, string][];
}

/** Reads an `application/x-www-form-urlencoded` body: 415 for any other type, 413 past the limit. */
export async function readForm(c: Context): Promise<Form> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
    throw new TesseraError(
      'unsupported_media_type',
      'Content-Type must be application/x-www-form-urlencoded',
    );
  }
  if (Number(c.req.header('content-length') ?? '0') > MAX_FORM_BYTES) throw tooLarge();
  const params = new URLSearchParams(await readLimited(c.req.raw.body));
  return {
    get: (name) => params.get(name) ?? '',
    getAll: (name) => params.getAll(name),
    has: (name) => params.has(name),
    entries: (except) => [...params].filter(([name]) => !except.includes(name)),
  };
}

async function readLimited(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > MAX_FORM_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new TesseraError('bad_request', 'the form is not valid UTF-8');
  }
}

function tooLarge(): TesseraError {
  return new TesseraError('payload_too_large', `the form is larger than ${MAX_FORM_BYTES} bytes`);
}
