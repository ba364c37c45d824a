import type { RandomSource } from './ports.ts';

/** Usernames are ASCII so that the SDK's Latin-1 payload decoding yields the same path. */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Token ids look like Mapbox's: `c` and 24 lowercase base-36 characters (cuid-shaped). */
export const TOKEN_ID_PATTERN = /^c[a-z0-9]{24}$/;

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

export function isUsername(value: unknown): value is string {
  return typeof value === 'string' && USERNAME_PATTERN.test(value);
}

export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_ID_PATTERN.test(value);
}

/** 24 characters drawn without modulo bias from 36 symbols: about 124 bits, unique not secret. */
export function newTokenId(random: RandomSource): string {
  let id = 'c';
  while (id.length < 25) {
    for (const byte of random.bytes(32)) {
      // 252 = 7 * 36: rejecting bytes above it keeps every symbol equally likely.
      if (byte < 252 && id.length < 25) id += BASE36[byte % 36];
    }
  }
  return id;
}
