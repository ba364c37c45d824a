import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { encodeBase62 } from '../core/base62.ts';
import type { Clock, KeyRing } from '../core/ports.ts';
import type { SigningKey } from '../core/token-format.ts';
import { MAX_TEMPORARY_LIFETIME_MS } from '../core/token-policy.ts';
import { CLOCK_LEEWAY_SECONDS } from '../core/token-status.ts';

interface StoredKey {
  readonly kid: string;
  readonly secret: string;
  readonly created: string;
}

interface KeyFile {
  readonly keys: readonly StoredKey[];
}

export const KEY_FILE_NAME = 'signing-keys.json';
/** A superseded key keeps verifying for the longest tk lifetime plus clock leeway. */
const RETIREMENT_MS = MAX_TEMPORARY_LIFETIME_MS + CLOCK_LEEWAY_SECONDS * 1000;
const RELOAD_CHECK_MS = 1000;

/**
 * Signing keys in `<dataDir>/signing-keys.json` (mode 0600). Writers replace the file atomically,
 * so a running server picks up a `tessera keys rotate` from another process within a second.
 */
export class FileKeyRing implements KeyRing {
  readonly #path: string;
  readonly #clock: Clock;
  #keys: readonly StoredKey[] = [];
  #stamp = '';
  #checkedAt = 0;

  constructor(dataDir: string, clock: Clock) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.#path = join(dataDir, KEY_FILE_NAME);
    this.#clock = clock;
    if (!exists(this.#path)) createExclusive(this.#path, { keys: [newKey(clock)] });
    this.#load();
  }

  activeKey(): SigningKey {
    this.#maybeReload();
    const newest = this.#keys.at(-1);
    if (!newest) throw new Error(`no signing key in ${this.#path}`);
    return toSigningKey(newest);
  }

  findKey(id: string): SigningKey | undefined {
    this.#maybeReload();
    const now = this.#clock.now();
    const index = this.#keys.findIndex((key) => key.kid === id);
    const key = this.#keys[index];
    if (!key) return undefined;
    const successor = this.#keys[index + 1];
    if (successor && Date.parse(successor.created) + RETIREMENT_MS < now) return undefined;
    return toSigningKey(key);
  }

  /** Adds a new active key and drops keys whose every token has expired. Returns the new key id. */
  rotate(): string {
    return withLock(`${this.#path}.lock`, () => {
      this.#load();
      const now = this.#clock.now();
      const fresh = newKey(this.#clock);
      const keys = [...this.#keys, fresh].filter((_key, index, all) => {
        const successor = all[index + 1];
        return !successor || Date.parse(successor.created) + RETIREMENT_MS >= now;
      });
      replaceAtomically(this.#path, { keys });
      this.#load();
      return fresh.kid;
    });
  }

  listKeys(): ReadonlyArray<{ readonly kid: string; readonly created: string }> {
    this.#load();
    return this.#keys.map(({ kid, created }) => ({ kid, created }));
  }

  #maybeReload(): void {
    const now = this.#clock.now();
    if (now - this.#checkedAt < RELOAD_CHECK_MS) return;
    this.#checkedAt = now;
    if (fileStamp(this.#path) !== this.#stamp) this.#load();
  }

  #load(): void {
    this.#stamp = fileStamp(this.#path);
    const parsed = JSON.parse(readFileSync(this.#path, 'utf8')) as KeyFile;
    if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) {
      throw new Error(`${this.#path} holds no signing keys`);
    }
    this.#keys = parsed.keys;
  }
}

function newKey(clock: Clock): StoredKey {
  return {
    kid: encodeBase62(randomBytes(9)).slice(0, 12),
    secret: randomBytes(32).toString('base64'),
    created: new Date(clock.now()).toISOString(),
  };
}

function toSigningKey(key: StoredKey): SigningKey {
  return { id: key.kid, secret: Buffer.from(key.secret, 'base64') };
}

function fileStamp(path: string): string {
  const stat = statSync(path);
  return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Written and flushed to disk before it is linked or renamed into place: a crash leaves old or new, never empty. */
function writeTemp(path: string, content: KeyFile): string {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(content, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

function syncFolder(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const LOCK_STALE_MS = 30_000;

/** Serialises read-modify-write of the key file across processes, so two rotations both land. */
function withLock<T>(lockPath: string, work: () => T): T {
  for (let attempt = 0; ; attempt++) {
    try {
      closeSync(openSync(lockPath, 'wx', 0o600));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 200) throw error;
      const held = statSync(lockPath, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) unlinkSync(lockPath);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return work();
  } finally {
    unlinkSync(lockPath);
  }
}

/** First start: two processes may race to create the file; the loser keeps the winner's keys. */
function createExclusive(path: string, content: KeyFile): void {
  const temp = writeTemp(path, content);
  try {
    linkSync(temp, path);
    syncFolder(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temp);
  }
}

function replaceAtomically(path: string, content: KeyFile): void {
  renameSync(writeTemp(path, content), path);
  syncFolder(path);
}
