import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { RandomSource } from '../core/ports.ts';

/** 256 random bits, base64url: the session id the cookie carries. */
export function newSessionId(random: RandomSource): string {
  return Buffer.from(random.bytes(32)).toString('base64url');
}

/** What the database keeps instead of the id. SHA-256 suffices: the id is 256 random bits, not a password. */
export function sessionIdHash(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('hex');
}

/**
 * A form token bound to one session id (or, before sign-in, to the anonymous cookie): an HMAC
 * keyed by the id, so another session's token, or one issued before sign-in, never matches.
 */
export function formToken(secret: string, purpose: 'session' | 'anonymous'): string {
  return createHmac('sha256', secret).update(`tessera form token: ${purpose}`).digest('base64url');
}

function flashKey(sessionId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', sessionId, Buffer.alloc(0), 'tessera flash', 32));
}

/**
 * Seals a one-shot message (it may carry a secret token shown once) with a key derived from the
 * session id. The database holds only the id's hash, so its copy of the message is unreadable.
 */
export function sealFlash(sessionId: string, message: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', flashKey(sessionId), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(message), 'utf8'), cipher.final()]);
  return [iv, body, cipher.getAuthTag()].map((part) => part.toString('base64url')).join('.');
}

export function openFlash(sessionId: string, sealed: string): unknown {
  const [iv, body, tag] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !body || !tag) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', flashKey(sessionId), iv);
    decipher.setAuthTag(tag);
    return JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8'));
  } catch {
    return undefined;
  }
}
