import type { Authorizer } from './authorizer.ts';
import type { RandomSource } from './ports.ts';

/** Where a change came from. `system` is Tessera itself (policies, leak scanners' reports). */
export const AUDIT_CHANNELS = ['api', 'dashboard', 'cli', 'system'] as const;

export type AuditChannel = (typeof AUDIT_CHANNELS)[number];

export const AUDIT_ACTIONS = [
  'account.create',
  'account.password',
  'session.signin',
  'token.create',
  'token.update',
  'token.delete',
  'token.refresh',
  'token.rotate',
  'token.leak',
  'token.expiring',
  'token.expire',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * One entry of an account's audit log: who did what, when, from where, through which channel.
 * Never a secret: targets are token ids and usernames, details hold metadata only.
 */
export interface AuditEvent {
  readonly id: string;
  /** The account whose log holds the event. */
  readonly username: string;
  readonly time: string;
  readonly action: AuditAction;
  /** `user:<username>`, `token:<token id>`, `operator`, or `system:<what>`. */
  readonly actor: string;
  readonly channel: AuditChannel;
  /** The client address, when the change came over HTTP. */
  readonly ip: string | null;
  /** The token id or username the action applies to. */
  readonly target: string;
  /** Metadata of the change (changed field names, the new token's id, a grace period...). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Who is behind a change, as the audit log records it. */
export interface AuditSource {
  readonly actor: string;
  readonly channel: AuditChannel;
  readonly ip: string | null;
}

/**
 * The channel follows from how the change was authorised: a token means the HTTP API, a signed-in
 * owner the dashboard, the operator the command line.
 */
export function auditSource(authorizer: Authorizer, ip: string | null = null): AuditSource {
  switch (authorizer.kind) {
    case 'token':
      return { actor: `token:${authorizer.tokenId ?? 'temporary'}`, channel: 'api', ip };
    case 'account':
      return { actor: `user:${authorizer.username}`, channel: 'dashboard', ip };
    case 'operator':
      return { actor: 'operator', channel: 'cli', ip: null };
  }
}

/** Tessera acting by itself: a policy, a scheduled expiry, a leak reported by a scanner. */
export function systemSource(what: string, ip: string | null = null): AuditSource {
  return { actor: `system:${what}`, channel: 'system', ip };
}

export interface AuditDraft {
  readonly action: AuditAction;
  readonly username: string;
  readonly target: string;
  readonly source: AuditSource;
  readonly time: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Event ids: `e` and 24 base-36 characters, unguessable, telling nothing about other accounts. */
export function newEventId(random: RandomSource): string {
  let id = 'e';
  while (id.length < 25) {
    for (const byte of random.bytes(32)) {
      if (byte < 252 && id.length < 25) id += BASE36[byte % 36];
    }
  }
  return id;
}

export const EVENT_ID_PATTERN = /^e[a-z0-9]{24}$/;

export function toAuditEvent(draft: AuditDraft, random: RandomSource): AuditEvent {
  return {
    id: newEventId(random),
    username: draft.username,
    time: draft.time,
    action: draft.action,
    actor: draft.source.actor,
    channel: draft.source.channel,
    ip: draft.source.ip,
    target: draft.target,
    ...(draft.details ? { details: draft.details } : {}),
  };
}
