import type { Context } from 'hono';
import { TesseraError } from '../core/errors.ts';
import { parseStrictJson } from './strict-json.ts';

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads a JSON request body: 415 unless JSON, 413 past 64 KiB (checked while streaming), 400 if malformed. */
export async function readJsonBody(c: Context): Promise<unknown> {
  return (await readJsonText(c)).value;
}

/** The same, with the exact text received (for a signature over the body). */
export async function readJsonText(c: Context): Promise<{ readonly text: string; readonly value: unknown }> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new TesseraError('unsupported_media_type');
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw new TesseraError('payload_too_large');
  const text = await readLimited(c.req.raw.body);
  const result = parseStrictJson(text);
  if (!result.ok) throw new TesseraError('bad_request', result.message);
  return { text, value: result.value };
}

async function readLimited(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new TesseraError('payload_too_large');
    chunks.push(chunk);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new TesseraError('bad_request', 'request body is not valid UTF-8');
  }
}
