import {
  type CipherGCM,
  createCipheriv,
  createDecipheriv,
  createHash,
  type DecipherGCM,
  hkdfSync,
  randomBytes,
} from 'node:crypto';

/**
 * The operator's key-encryption keys (`TESSERA_KEY_ENCRYPTION_KEY`): the first seals, every one
 * opens, so an operator can move to a new key by listing it first and running `tessera keys rotate`.
 */
export interface KeyEncryptionKeys {
  readonly current: KeyEncryptionKey;
  readonly all: readonly KeyEncryptionKey[];
}

export class KeyEncryptionKey {
  /** A public fingerprint (stored beside what it sealed), never the key. */
  readonly id: string;
  readonly #aesKey: Buffer;

  constructor(raw: Buffer) {
    // Sub-keys, so the operator's key itself never meets AES or shows in a fingerprint.
    this.#aesKey = Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), 'tessera signing-key seal v1', 32));
    this.id = createHash('sha256').update('tessera kek id v1').update(raw).digest('hex').slice(0, 16);
  }

  cipher(nonce: Buffer): CipherGCM {
    return createCipheriv('aes-256-gcm', this.#aesKey, nonce);
  }

  decipher(nonce: Buffer): DecipherGCM {
    return createDecipheriv('aes-256-gcm', this.#aesKey, nonce);
  }

  /** Never printed, logged or serialised as anything but its fingerprint. */
  toJSON(): string {
    return `kek:${this.id}`;
  }
}

const KEY_PATTERN = /^[A-Za-z0-9+/_-]{43}=?$/;
const FORMAT = 'v1';

/**
 * Parses one or more comma-separated base64 keys of exactly 32 bytes (`openssl rand -base64 32`).
 * Errors name the position of a bad key, never its value.
 */
export function parseKeyEncryptionKeys(
  value: string,
  variable = 'TESSERA_KEY_ENCRYPTION_KEY',
): KeyEncryptionKeys {
  const parts = value.split(',').map((part) => part.trim());
  const keys = parts.map((part, index) => {
    const raw = KEY_PATTERN.test(part)
      ? Buffer.from(part.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
      : null;
    if (raw?.length !== 32) {
      throw new TypeError(
        `${variable}: key ${index + 1} of ${parts.length} is not 32 bytes in base64 (make one with: openssl rand -base64 32)`,
      );
    }
    return new KeyEncryptionKey(raw);
  });
  const ids = new Set(keys.map((key) => key.id));
  if (ids.size !== keys.length) throw new TypeError(`${variable}: the same key is listed twice`);
  return { current: keys[0] as KeyEncryptionKey, all: keys };
}

/**
 * AES-256-GCM with a fresh 96-bit nonce; `context` (the key id) is authenticated, so a sealed value
 * moved to another row does not open. Output: `v1:<kek id>:<nonce>:<ciphertext+tag>` (base64url).
 */
export function seal(keys: KeyEncryptionKeys, context: string, secret: Buffer): string {
  const kek = keys.current;
  const nonce = randomBytes(12);
  const cipher = kek.cipher(nonce);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  return [FORMAT, kek.id, nonce.toString('base64url'), body.toString('base64url')].join(':');
}

export class SealError extends Error {
  override readonly name = 'SealError';
}

/** Opens what `seal` made, with whichever listed key sealed it. Throws `SealError` otherwise. */
export function open(keys: KeyEncryptionKeys, context: string, sealed: string): Buffer {
  const parts = sealed.split(':');
  const [format, kekId, nonce, body] = parts;
  if (parts.length !== 4 || format !== FORMAT || !kekId || !nonce || !body)
    throw new SealError('not a sealed value');
  const kek = keys.all.find((key) => key.id === kekId);
  if (!kek) throw new SealError(`sealed under key-encryption key ${kekId}, which is not configured`);
  const bytes = Buffer.from(body, 'base64url');
  const iv = Buffer.from(nonce, 'base64url');
  if (bytes.length < 17 || iv.length !== 12) throw new SealError('not a sealed value');
  try {
    const decipher = kek.decipher(iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]);
  } catch {
    throw new SealError(`sealed value for ${context} does not authenticate`);
  }
}

/** Which key-encryption key sealed a value (to know what `tessera keys rotate` must re-seal). */
export function sealedWith(sealed: string): string | undefined {
  return sealed.split(':')[1];
}
