import type { AuditEvent } from '../core/audit.ts';
import { isTokenId } from '../core/identifiers.ts';

/** What the audit log knows of a token it names: its name, and whether it is gone. */
export interface TokenLabel {
  readonly note: string;
  readonly deleted: boolean;
}

export type TokenLabels = ReadonlyMap<string, TokenLabel>;

const ACTIONS: Readonly<Record<string, string>> = {
  'account.create': 'Account created',
  'account.password': 'Password changed',
  'session.signin': 'Signed in',
  'token.create': 'Token created',
  'token.update': 'Token updated',
  'token.delete': 'Token deleted',
  'token.refresh': 'Default public token refreshed',
  'token.rotate': 'Token rotated',
  'token.leak': 'Token reported as leaked',
  'token.expire': 'Token expired',
};

const FIELDS: Readonly<Record<string, string>> = {
  note: 'name',
  allowedUrls: 'allowed URLs',
  expiresAt: 'expiry',
  rateLimit: 'rate limit',
  allowedApplications: 'allowed applications',
  allowedApis: 'allowed APIs',
};

const CHANNELS: Readonly<Record<string, string>> = {
  api: 'API',
  dashboard: 'Dashboard',
  cli: 'Command line',
  system: 'Tessera',
};

/** The action in words, with what its details add: `Token updated: name, scopes`. */
export function describeAction(event: AuditEvent): string {
  const base = ACTIONS[event.action] ?? event.action;
  const details = event.details ?? {};
  if (event.action === 'token.update' && Array.isArray(details.fields)) {
    const fields = details.fields.filter((field): field is string => typeof field === 'string');
    return fields.length ? `${base}: ${fields.map((field) => FIELDS[field] ?? field).join(', ')}` : base;
  }
  if (event.action === 'token.rotate' && typeof details.gracePeriod === 'number') {
    return details.gracePeriod === 0
      ? `${base}, no grace period`
      : `${base}, old token kept for ${duration(details.gracePeriod)}`;
  }
  if (event.action === 'token.create' && (details.usage === 'pk' || details.usage === 'sk')) {
    return `${base} (${details.usage === 'pk' ? 'public' : 'secret'})`;
  }
  return base;
}

export function describeChannel(channel: string): string {
  return CHANNELS[channel] ?? channel;
}

/** Who acted, in words: a person, a token by its name, the operator, Tessera itself. */
export function describeActor(actor: string, labels: TokenLabels): string {
  if (actor === 'operator') return 'Operator';
  if (actor === 'token:temporary') return 'A temporary token';
  const [kind, ...rest] = actor.split(':');
  const value = rest.join(':');
  if (kind === 'user') return value;
  if (kind === 'token') return `Token ${tokenWords(value, labels)}`;
  if (kind === 'system') return `Tessera (${value})`;
  return actor;
}

/** A token named by the audit log: “Maps site”, “Maps site” (deleted), or its id when unknown. */
export function tokenWords(id: string, labels: TokenLabels): string {
  const label = labels.get(id);
  if (!label) return id;
  const name = label.note ? `“${label.note}”` : 'Unnamed';
  return label.deleted ? `${name} (deleted)` : name;
}

/** Every token id an event names: its target, the token that acted, a rotation's replacement. */
export function tokenIdsOf(event: AuditEvent): string[] {
  const ids = [event.target];
  if (event.actor.startsWith('token:')) ids.push(event.actor.slice('token:'.length));
  const replacement = event.details?.replacement;
  if (typeof replacement === 'string') ids.push(replacement);
  return ids.filter(isTokenId);
}

/** Seconds as the grace periods are offered: `1 hour`, `7 days`, `90 minutes`. */
export function duration(seconds: number): string {
  const units: [number, string][] = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${unit}${count === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}
