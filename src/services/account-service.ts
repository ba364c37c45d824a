import { type AuditSource, toAuditEvent } from '../core/audit.ts';
import { TesseraError } from '../core/errors.ts';
import { isUsername } from '../core/identifiers.ts';
import type { Clock, RandomSource } from '../core/ports.ts';
import type { ScopeCatalogue } from '../core/scopes.ts';
import type { Store } from '../core/store.ts';
import { isoTime } from '../core/tokens.ts';
import { type PasswordHasher, passwordProblem } from './passwords.ts';
import { issueDefaultToken } from './token-issuer.ts';

export interface AccountServiceDeps {
  readonly store: Store;
  readonly catalogue: ScopeCatalogue;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly passwords: PasswordHasher;
}

export interface NewAccount {
  readonly username: string;
  readonly email: string;
  readonly password: string;
}

export interface CreatedAccount {
  readonly username: string;
  readonly email: string;
  readonly defaultToken: string;
}

export type AccountService = ReturnType<typeof createAccountService>;

const EMAIL_PATTERN = /^[^\s@<>"]+@[^\s@<>"]+\.[^\s@<>"]+$/;

export function createAccountService(deps: AccountServiceDeps) {
  const { store, catalogue, clock, random, passwords } = deps;

  /** Creates the account and its default public token in one transaction. */
  async function createAccount(
    input: NewAccount,
    source: AuditSource = { actor: 'operator', channel: 'cli', ip: null },
  ): Promise<CreatedAccount> {
    checkNewAccount(input);
    const passwordHash = await passwords.hash(input.password);
    const now = clock.now();
    const { record, token } = issueDefaultToken({ username: input.username, catalogue, now }, random);
    const account = {
      username: input.username,
      email: input.email,
      passwordHash,
      created: isoTime(now),
      modified: isoTime(now),
    };
    const event = toAuditEvent(
      {
        action: 'account.create',
        username: input.username,
        target: input.username,
        source,
        time: isoTime(now),
        details: { defaultToken: record.id },
      },
      random,
    );
    if (!(await store.createAccount(account, record, [event]))) {
      throw new TesseraError('conflict', 'username is already taken');
    }
    return { username: input.username, email: input.email, defaultToken: token };
  }

  return { createAccount };
}

function checkNewAccount(input: NewAccount): void {
  if (!isUsername(input.username)) {
    throw new TesseraError(
      'invalid_field',
      'username must be 1-32 characters of a-z, 0-9, "_" or "-", starting with a letter or digit',
    );
  }
  if (input.email.length > 254 || !EMAIL_PATTERN.test(input.email)) {
    throw new TesseraError('invalid_field', 'email must be a valid email address');
  }
  const problem = passwordProblem(input.password);
  if (problem) throw new TesseraError('invalid_field', problem);
}
