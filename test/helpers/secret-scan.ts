import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What a secret is: a token of one kind, a password, a dashboard session id, or a planted control value. */
export type SecretKind = 'pk' | 'sk' | 'tk' | 'password' | 'session' | 'control';

export interface Secret {
  readonly kind: SecretKind;
  /** Says which secret it is in a failure message (an id, a username), never the secret itself. */
  readonly label: string;
  /** The whole token, or the password. */
  readonly value: string;
}

export interface Hit {
  readonly secret: Secret;
  /** Which spelling matched, e.g. `secret part, base64 at offset 1`. */
  readonly form: string;
  readonly source: string;
  readonly offset: number;
}

/** Length of the prefix the index is keyed on: every spelling is at least this long. */
const KEY = 12;

/** The part of a token that is secret: the third, dot-separated segment (decision 0001). */
export function secretPart(token: string): string {
  const part = token.split('.')[2];
  if (part === undefined || part.length < KEY) throw new TypeError('not a three-part token');
  return part;
}

/**
 * Every spelling of `text` a copy could hide in, as latin1 strings of bytes: raw UTF-8, hex in both
 * cases, UTF-16LE, and base64 and base64url at each of the three byte alignments it can start on
 * inside a longer encoded blob (only the characters that depend on `text` alone are kept).
 */
export function encodings(text: string): Array<{ readonly form: string; readonly bytes: string }> {
  const utf8 = Buffer.from(text, 'utf8');
  const forms = [
    { form: 'raw', bytes: utf8.toString('latin1') },
    { form: 'hex', bytes: utf8.toString('hex') },
    { form: 'HEX', bytes: utf8.toString('hex').toUpperCase() },
    { form: 'utf16le', bytes: Buffer.from(text, 'utf16le').toString('latin1') },
  ];
  for (const shift of [0, 1, 2] as const) {
    forms.push({ form: `base64@${shift}`, bytes: alignedBase64(utf8, shift, 'base64') });
    forms.push({ form: `base64url@${shift}`, bytes: alignedBase64(utf8, shift, 'base64url') });
  }
  return forms;
}

function alignedBase64(bytes: Buffer, shift: 0 | 1 | 2, alphabet: 'base64' | 'base64url'): string {
  const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
  const text = padded.toString(alphabet).replace(/=+$/, '');
  // Characters carrying bits of the bytes before (the zero shift) or of the zero fill after.
  const head = [0, 2, 3][shift] ?? 0;
  const tail = padded.length % 3 === 0 ? 0 : 1;
  return text.slice(head, text.length - tail);
}

/** How a password (or a cookie value) travels: form and query encodings, JSON and HTML escaping, on top of `encodings`. */
function textSpellings(password: string): Array<{ readonly form: string; readonly text: string }> {
  const html = password.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
  return [
    { form: 'value', text: password },
    { form: 'value, percent-encoded', text: encodeURIComponent(password) },
    { form: 'value, form-encoded', text: new URLSearchParams({ p: password }).toString().slice(2) },
    { form: 'value, JSON string', text: JSON.stringify(password).slice(1, -1) },
    { form: 'value, HTML-escaped', text: html.replaceAll('<', '&lt;').replaceAll('>', '&gt;') },
  ];
}

interface Needle {
  readonly secret: Secret;
  readonly form: string;
  readonly bytes: string;
}

function needlesOf(secret: Secret): Needle[] {
  const texts =
    secret.kind === 'pk' || secret.kind === 'sk' || secret.kind === 'tk'
      ? [
          { form: 'whole token', text: secret.value },
          { form: 'secret part', text: secretPart(secret.value) },
        ]
      : textSpellings(secret.value);
  const needles = new Map<string, Needle>();
  for (const { form, text } of texts) {
    for (const encoded of encodings(text)) {
      if (encoded.bytes.length < KEY) throw new TypeError(`${secret.label} is too short to search for`);
      // Spellings that coincide (a password without special characters) are searched once.
      if (!needles.has(encoded.bytes))
        needles.set(encoded.bytes, { secret, form: `${form}, ${encoded.form}`, bytes: encoded.bytes });
    }
  }
  return [...needles.values()];
}

/**
 * Finds every spelling of every secret in a byte string with one pass: an index keyed on the
 * first 12 bytes of each spelling, probed at every offset. Scanning is linear in the input.
 */
export class SecretScanner {
  readonly #index = new Map<string, Needle[]>();
  /** One bit per possible first three bytes of a spelling: most offsets are ruled out by it alone. */
  readonly #starts = new Uint8Array(1 << 21);
  readonly secrets: number;
  readonly needles: number;
  bytesScanned = 0;
  /** Each source scanned, with its size in bytes. */
  readonly sources = new Map<string, number>();

  constructor(secrets: readonly Secret[]) {
    let needles = 0;
    for (const secret of secrets) {
      for (const needle of needlesOf(secret)) {
        const key = needle.bytes.slice(0, KEY);
        const start = trigram(key, 0);
        this.#starts[start >>> 3] = (this.#starts[start >>> 3] ?? 0) | (1 << (start & 7));
        const bucket = this.#index.get(key);
        if (bucket) bucket.push(needle);
        else this.#index.set(key, [needle]);
        needles++;
      }
    }
    this.secrets = secrets.length;
    this.needles = needles;
  }

  scan(source: string, data: Buffer | string): Hit[] {
    const text =
      typeof data === 'string' ? Buffer.from(data, 'utf8').toString('latin1') : data.toString('latin1');
    this.bytesScanned += text.length;
    this.sources.set(source, (this.sources.get(source) ?? 0) + text.length);
    const hits: Hit[] = [];
    for (let offset = 0; offset + KEY <= text.length; offset++) {
      const start = trigram(text, offset);
      if (((this.#starts[start >>> 3] ?? 0) & (1 << (start & 7))) === 0) continue;
      const bucket = this.#index.get(text.substr(offset, KEY));
      if (!bucket) continue;
      for (const needle of bucket) {
        if (text.startsWith(needle.bytes, offset))
          hits.push({ secret: needle.secret, form: needle.form, source, offset });
      }
    }
    return hits;
  }

  /** Scans every regular file under `dir`, recursively; `prefix` names the folder in sources. */
  scanFolder(dir: string, prefix: string): Hit[] {
    const hits: Hit[] = [];
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) hits.push(...this.scanFolder(path, `${prefix}/${name}`));
      else if (stat?.isFile()) hits.push(...this.scan(`${prefix}/${name}`, readFileSync(path)));
    }
    return hits;
  }
}

function trigram(text: string, offset: number): number {
  return (text.charCodeAt(offset) << 16) | (text.charCodeAt(offset + 1) << 8) | text.charCodeAt(offset + 2);
}

/**
 * For a failure message: how many hits of each kind where (answer numbers, path segments with
 * digits and Redis keys left out), then one line per hit up to `max`; a hit names its source, kind, label and spelling, never
 * the secret.
 */
export function describeHits(hits: readonly Hit[], max = 20): string {
  const groups = new Map<string, number>();
  for (const hit of hits) {
    const where = hit.source
      .replace(/^response #\d+ /, 'response ')
      .replace(/\/[^/\s]*\d[^/\s]*/g, '/:param')
      .replace(/^redis .*/, 'redis');
    const group = `${hit.secret.kind} in ${where}`;
    groups.set(group, (groups.get(group) ?? 0) + 1);
  }
  const summary = [...groups].map(([group, count]) => `${count} x ${group}`);
  const lines = hits
    .slice(0, max)
    .map((hit) => `${hit.source} @${hit.offset}: ${hit.secret.kind} ${hit.secret.label} (${hit.form})`);
  if (hits.length > max) lines.push(`... and ${hits.length - max} more`);
  return [...summary, '', ...lines].join('\n');
}
