import type { AuditEvent } from './audit.ts';
/**
 * A dashboard session as stored. The row is keyed by a hash of the session id: the id itself lives
 * only in the browser's cookie, so a copy of the database cannot be replayed as a session.
 */
export interface SessionRecord {
  readonly idHash: string;
  readonly username: string;
  readonly created: string;
  readonly lastSeen: string;
  /** The absolute end, whatever the activity. */
  readonly expiresAt: string;
  /** Until when a password confirmation lets the session create, change or delete tokens. */
  readonly confirmedUntil: string | null;
  /** Wrong password confirmations counted since `confirmWindowStart`. */
  readonly confirmFailures: number;
  readonly confirmWindowStart: string | null;
  /** A one-shot message for the next page, sealed with a key only the cookie holder can derive. */
  readonly flash: string | null;
}

export type SessionChanges = Partial<
  Pick<SessionRecord, 'lastSeen' | 'confirmedUntil' | 'confirmFailures' | 'confirmWindowStart' | 'flash'>
>;

/** The session persistence port. Every method is one atomic, durable operation. */
export interface SessionStore {
  /**
   * Stores a new session. With `passwordHash`, only if the account still has that password hash
   * (false otherwise): a sign-in that checked the old password while it was being changed must not
   * leave a session behind the change.
   */
  /** With a guard, only while the account's password hash is still that one; `audit` commits with it. */
  insertSession(
    record: SessionRecord,
    guard?: { readonly passwordHash: string },
    audit?: readonly AuditEvent[],
  ): Promise<boolean>;
  findSession(idHash: string): Promise<SessionRecord | undefined>;
  /** False when the session no longer exists. */
  updateSession(idHash: string, changes: SessionChanges): Promise<boolean>;
  /** Reads and clears the flash in one step, so it shows once even with two tabs racing. */
  takeFlash(idHash: string): Promise<string | null>;
  /**
   * Counts one wrong confirmation in a window that starts afresh when the last one began before
   * `windowStartAfter`; returns the count, or undefined when the session no longer exists.
   */
  recordConfirmFailure(idHash: string, now: string, windowStartAfter: string): Promise<number | undefined>;
  deleteSession(idHash: string): Promise<boolean>;
  /** Swaps a session for a new one (a new id after a privilege change), atomically. */
  replaceSession(oldIdHash: string, next: SessionRecord): Promise<boolean>;
  /**
   * Sets the password if it is still `previousHash` (two changes at once must not both win), ends
   * every session of the account and starts `next`, in one transaction; false if it had changed.
   */
  changePassword(
    change: PasswordChange,
    next: SessionRecord,
    audit?: readonly AuditEvent[],
  ): Promise<boolean>;
  /** Deletes sessions past their absolute end or idle since before `idleBefore`; returns how many. */
  pruneSessions(now: string, idleBefore: string): Promise<number>;
}

export interface PasswordChange {
  readonly username: string;
  readonly previousHash: string;
  readonly passwordHash: string;
  readonly modified: string;
}
