import { hash, verify } from '@node-rs/argon2';
import { TesseraError } from '../core/errors.ts';

/** OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane. About 30-40 ms per hash here. */
// `algorithm: 2` is Argon2id (the package exports it as an ambient const enum).
const ARGON2_OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 128;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(passwordHash: string, password: string): Promise<boolean>;
}

export const argon2Hasher: PasswordHasher = {
  hash: (password) => hash(password, ARGON2_OPTIONS),
  verify: async (passwordHash, password) => {
    try {
      return await verify(passwordHash, password);
    } catch {
      return false;
    }
  },
};

/** Returns why a password is unacceptable, or undefined. Length rules only, per NIST 800-63B. */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (length > MAX_PASSWORD_LENGTH) return `password must be at most ${MAX_PASSWORD_LENGTH} characters`;
  if (password.includes('\0')) return 'password must not contain NUL characters';
  return undefined;
}

export interface HashingLimits {
  /** Checks running at once (libuv runs four at a time by default; more only queue there). */
  readonly running: number;
  /** Checks waiting for a slot; beyond this, callers get 503 at once instead of a growing queue. */
  readonly waiting: number;
}

/**
 * Bounds the Argon2 work in flight. Each check costs ~19 MiB and ~35 ms of a core, so a flood of
 * sign-ins (many accounts, many addresses) would otherwise queue without end and starve the process.
 */
export function boundedHasher(inner: PasswordHasher, limits: HashingLimits): PasswordHasher {
  let running = 0;
  const queue: (() => void)[] = [];
  async function slot<T>(task: () => Promise<T>): Promise<T> {
    if (running >= limits.running) {
      if (queue.length >= limits.waiting) {
        throw new TesseraError('unavailable', 'Too many password checks at once. Try again in a moment.');
      }
      await new Promise<void>((resolve) => queue.push(resolve));
    } else running += 1;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, or give it back.
      const next = queue.shift();
      if (next) next();
      else running -= 1;
    }
  }
  return {
    hash: (password) => slot(() => inner.hash(password)),
    verify: (passwordHash, password) => slot(() => inner.verify(passwordHash, password)),
  };
}
