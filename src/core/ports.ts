import type { SigningKey } from './token-format.ts';

/** Ports: the small interfaces the core needs from the outside world. */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export interface RandomSource {
  /** Cryptographically secure random bytes. */
  bytes(length: number): Uint8Array;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Keys that sign temporary tokens. The newest signs; older ones verify until their tokens expired. */
export interface KeyRing {
  activeKey(): SigningKey;
  findKey(id: string): SigningKey | undefined;
}
