const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = 62n;

/** Characters needed to render `byteLength` bytes in base62 without loss. */
export function base62Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / Math.log2(62));
}

/**
 * Fixed-width base62: the width depends only on the input length, so every token of a kind has the
 * same length and nothing about the secret leaks through it.
 */
export function encodeBase62(bytes: Uint8Array): string {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let out = '';
  for (let i = 0; i < base62Length(bytes.length); i++) {
    out = ALPHABET[Number(value % BASE)] + out;
    value /= BASE;
  }
  return out;
}

/** Fixed-width base62 of an unsigned 32-bit integer (6 characters). */
export function encodeUint32Base62(value: number): string {
  let rest = value >>> 0;
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

export function isBase62(text: string): boolean {
  return /^[0-9A-Za-z]*$/.test(text);
}
