import { randomBytes } from 'node:crypto';
import { toAuditEvent } from '../core/audit.ts';
import { throttlingKey } from '../core/client-address.ts';
import type { Clock, RandomSource } from '../core/ports.ts';
import type { SessionRecord, SessionStore } from '../core/session-store.ts';
import type { Store } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';
import type { AccountService, NewAccount } from './account-service.ts';
import { KeyedLock } from './keyed-lock.ts';
import type { AttemptOutcome, LoginThrottle } from './login-throttle.ts';
import { type PasswordHasher, passwordProblem } from './passwords.ts';
import { newSessionId, openFlash, sealFlash, sessionIdHash } from './session-crypto.ts';

/** Timeouts and thresholds, from the security plan's proposed defaults. */
export const SESSION_POLICY = {
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 60 * 60_000,
  /** How long a password confirmation lets a session create, change or delete tokens. */
  confirmationMs: 5 * 60_000,
  confirmFailureLimit: 5,
  confirmFailureWindowMs: 15 * 60_000,
  /** `lastSeen` is written at most this often, so reading pages does not write on every request. */
  touchEveryMs: 60_000,
} as const;

export interface Session {
  /** The id as the cookie carries it; never stored. */
  readonly id: string;
  readonly record: SessionRecord;
}

export type SignInResult =
  | { readonly outcome: 'signed-in'; readonly session: Session }
  | { readonly outcome: 'refused' }
  | { readonly outcome: 'throttled'; readonly retryAfterSeconds: number };

export type ConfirmResult =
  | { readonly outcome: 'confirmed'; readonly session: Session }
  | CheckedPassword
  | { readonly outcome: 'wrong'; readonly remaining: number }
  /** `failures`: ended here by too many wrong passwords; `ended`: it was already gone (signed out, expired). */
  | { readonly outcome: 'revoked'; readonly reason: 'failures' | 'ended' };

/** The password was right: the hash it matched, so a change can insist on replacing exactly that one. */
interface CheckedPassword {
  readonly outcome: 'confirmed';
  readonly session: Session;
  readonly passwordHash: string;
}

const ENDED: ConfirmResult = { outcome: 'revoked', reason: 'ended' };

export type ChangePasswordResult =
  | { readonly outcome: 'changed'; readonly session: Session }
  | { readonly outcome: 'invalid'; readonly message: string }
  | ConfirmResult;

export interface SessionServiceDeps {
  readonly store: Pick<Store, 'findAccount'>;
  readonly sessions: SessionStore;
  readonly accounts: AccountService;
  readonly passwords: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly clock: Clock;
  readonly random: RandomSource;
}

export type SessionService = ReturnType<typeof createSessionService>;

export function createSessionService(deps: SessionServiceDeps) {
  const { store, sessions, accounts, passwords, throttle, clock, random } = deps;
  // Unknown usernames are checked against this, so they cost the same argon2 work as a wrong password.
  const decoyHash = passwords.hash(randomBytes(24).toString('base64'));
  const confirmations = new KeyedLock();

  async function signIn(username: string, password: string, client: string): Promise<SignInResult> {
    const accountKey = `account:${username.trim().toLowerCase().slice(0, 64)}`;
    const attempt = throttle.begin(accountKey, `client:${throttlingKey(client)}`, clock.now());
    if (!attempt.allowed) return { outcome: 'throttled', retryAfterSeconds: attempt.retryAfterSeconds };
    let outcome: AttemptOutcome = 'failure';
    try {
      let account: Awaited<ReturnType<typeof store.findAccount>>;
      let valid: boolean;
      try {
        account = await store.findAccount(username);
        valid = await passwords.verify(account?.passwordHash ?? (await decoyHash), password);
      } catch (error) {
        // No password was checked (the store or the Argon2 budget was unavailable): not a guess, so
        // a user retrying through an outage is not locked out once it ends.
        outcome = 'abandoned';
        throw error;
      }
      if (!account || !valid) return { outcome: 'refused' };
      const session = await start(account.username, account.passwordHash, {
        action: 'session.signin',
        ip: client,
      });
      // The password changed while it was checked: the old one no longer opens anything.
      if (!session) return { outcome: 'refused' };
      outcome = 'success';
      return { outcome: 'signed-in', session };
    } finally {
      attempt.release(outcome);
    }
  }

  async function signUp(input: NewAccount, client: string): Promise<Session> {
    await accounts.createAccount(input, {
      actor: `user:${input.username}`,
      channel: 'dashboard',
      ip: client,
    });
    const session = await start(input.username);
    if (!session) throw new Error('a new account has no session');
    return session;
  }

  /** The session behind a cookie, if it is still alive; refreshes its idle deadline now and then. */
  async function resume(id: string | undefined): Promise<Session | undefined> {
    if (!id || id.length > 64) return undefined;
    const record = await sessions.findSession(sessionIdHash(id));
    if (!record) return undefined;
    const now = clock.now();
    const idleUntil = Date.parse(record.lastSeen) + SESSION_POLICY.idleMs;
    const expiresAt = Date.parse(record.expiresAt);
    // An unreadable time (a damaged row) counts as ended: NaN compares false and would never expire.
    if (!Number.isFinite(idleUntil) || !Number.isFinite(expiresAt) || now >= expiresAt || now >= idleUntil) {
      await sessions.deleteSession(record.idHash);
      return undefined;
    }
    if (now - Date.parse(record.lastSeen) < SESSION_POLICY.touchEveryMs) return { id, record };
    const touched = { ...record, lastSeen: isoTime(now) };
    await sessions.updateSession(record.idHash, { lastSeen: touched.lastSeen });
    return { id, record: touched };
  }

  async function signOut(session: Session): Promise<void> {
    await sessions.deleteSession(session.record.idHash);
  }

  function isConfirmed(session: Session): boolean {
    const until = session.record.confirmedUntil;
    return until !== null && clock.now() < Date.parse(until);
  }

  /** Checks the password again; a right one opens the confirmation window under a new session id. */
  function confirm(session: Session, password: string): Promise<ConfirmResult> {
    // One check at a time per session: a burst of guesses cannot outrun the failure counter.
    return confirmations.run(session.record.idHash, async () => {
      const checked = await checkPassword(session, password);
      if (checked.outcome !== 'confirmed') return checked;
      const confirmedUntil = isoTime(clock.now() + SESSION_POLICY.confirmationMs);
      const renewed = await renew(session, { confirmedUntil });
      return renewed ? { outcome: 'confirmed', session: renewed } : ENDED;
    });
  }

  async function checkPassword(session: Session, password: string): Promise<ConfirmResult> {
    const current = await sessions.findSession(session.record.idHash);
    const account = current && (await store.findAccount(current.username));
    if (!current || !account) return ENDED;
    if (await passwords.verify(account.passwordHash, password)) {
      return { outcome: 'confirmed', session, passwordHash: account.passwordHash };
    }
    const now = clock.now();
    const windowStart = isoTime(now - SESSION_POLICY.confirmFailureWindowMs);
    const failures = await sessions.recordConfirmFailure(current.idHash, isoTime(now), windowStart);
    if (failures === undefined) return ENDED;
    if (failures >= SESSION_POLICY.confirmFailureLimit) {
      await sessions.deleteSession(current.idHash);
      return { outcome: 'revoked', reason: 'failures' };
    }
    return { outcome: 'wrong', remaining: SESSION_POLICY.confirmFailureLimit - failures };
  }

  /** Needs the current password; ends every session of the account and keeps this one, under a new id. */
  function changePassword(
    session: Session,
    current: string,
    next: string,
    client: string | null = null,
  ): Promise<ChangePasswordResult> {
    return confirmations.run(session.record.idHash, async () => {
      const problem = passwordProblem(next);
      if (problem) return { outcome: 'invalid', message: problem };
      const checked = await checkPassword(session, current);
      if (checked.outcome !== 'confirmed') return checked;
      const passwordHash = await passwords.hash(next);
      const fresh = newRecord(session.record.username, { confirmedUntil: null });
      const change = {
        username: session.record.username,
        previousHash: 'passwordHash' in checked ? checked.passwordHash : '',
        passwordHash,
        modified: isoTime(clock.now()),
      };
      // Another session changed the password meanwhile: that change ended this session too.
      const event = toAuditEvent(
        {
          action: 'account.password',
          username: change.username,
          target: change.username,
          source: { actor: `user:${change.username}`, channel: 'dashboard', ip: client },
          time: change.modified,
        },
        random,
      );
      if (!(await sessions.changePassword(change, fresh.record, [event]))) return ENDED;
      return { outcome: 'changed', session: fresh.session };
    });
  }

  async function setFlash(session: Session, message: Flash): Promise<void> {
    await sessions.updateSession(session.record.idHash, { flash: sealFlash(session.id, message) });
  }

  async function takeFlash(session: Session): Promise<Flash | undefined> {
    const sealed = await sessions.takeFlash(session.record.idHash);
    return sealed === null ? undefined : asFlash(openFlash(session.id, sealed));
  }

  async function start(
    username: string,
    passwordHash?: string,
    audit?: { readonly action: 'session.signin'; readonly ip: string },
  ): Promise<Session | undefined> {
    const now = clock.now();
    // Sweeping here keeps the table to live sessions without a timer of its own.
    await sessions.pruneSessions(isoTime(now), isoTime(now - SESSION_POLICY.idleMs));
    const { session, record } = newRecord(username, { confirmedUntil: null });
    const events = audit
      ? [
          toAuditEvent(
            {
              action: audit.action,
              username,
              target: username,
              source: { actor: `user:${username}`, channel: 'dashboard', ip: audit.ip },
              time: isoTime(now),
            },
            random,
          ),
        ]
      : [];
    const stored = await sessions.insertSession(
      record,
      passwordHash === undefined ? undefined : { passwordHash },
      events,
    );
    return stored ? session : undefined;
  }

  /**
   * Undefined when the session ended while its password was checked (signed out in another tab):
   * that is an expected race, answered like any ended session rather than with a 500.
   */
  async function renew(session: Session, changes: { confirmedUntil: string }): Promise<Session | undefined> {
    const id = newSessionId(random);
    const record = { ...session.record, ...changes, idHash: sessionIdHash(id), confirmFailures: 0 };
    const next = { ...record, confirmWindowStart: null, flash: null, lastSeen: isoTime(clock.now()) };
    if (!(await sessions.replaceSession(session.record.idHash, next))) return undefined;
    return { id, record: next };
  }

  function newRecord(username: string, extra: { confirmedUntil: string | null }) {
    const id = newSessionId(random);
    const now = clock.now();
    const record: SessionRecord = {
      idHash: sessionIdHash(id),
      username,
      created: isoTime(now),
      lastSeen: isoTime(now),
      expiresAt: isoTime(now + SESSION_POLICY.absoluteMs),
      confirmedUntil: extra.confirmedUntil,
      confirmFailures: 0,
      confirmWindowStart: null,
      flash: null,
    };
    return { session: { id, record }, record };
  }

  return { signIn, signUp, resume, signOut, isConfirmed, confirm, changePassword, setFlash, takeFlash };
}

/** A one-shot message for the next page; `reveal` carries a newly created token to show once. */
export interface Flash {
  readonly notice?: string;
  readonly reveal?: { readonly id: string; readonly token: string; readonly usage: 'pk' | 'sk' };
}

function asFlash(value: unknown): Flash | undefined {
  return typeof value === 'object' && value !== null ? (value as Flash) : undefined;
}
