import type { AuditAction, AuditEvent } from './audit.ts';

/** The event types an operator's webhooks receive (`webhooks[].events` in TESSERA_CONFIG). */
export type WebhookType =
  | 'token.created'
  | 'token.deleted'
  | 'token.rotated'
  | 'token.expiring'
  | 'token.expired'
  | 'token.leaked';

const TYPES: Partial<Record<AuditAction, WebhookType>> = {
  'token.create': 'token.created',
  'token.delete': 'token.deleted',
  // A refresh replaces the default token with no grace period: a rotation, as far as a receiver cares.
  'token.refresh': 'token.rotated',
  'token.rotate': 'token.rotated',
  'token.expiring': 'token.expiring',
  'token.expire': 'token.expired',
  'token.leak': 'token.leaked',
};

export interface WebhookEvent {
  readonly type: WebhookType;
  /** The JSON body: `{id, type, time, data}`. `id` is the audit event's, so receivers can de-duplicate. */
  readonly body: string;
}

/** The webhook event an audit event becomes, if any. Carries metadata only, never a token. */
export function toWebhookEvent(event: AuditEvent): WebhookEvent | undefined {
  const type = TYPES[event.action];
  if (!type) return undefined;
  const data = {
    username: event.username,
    tokenId: event.target,
    actor: event.actor,
    channel: event.channel,
    ...(event.action === 'token.refresh' ? { gracePeriod: 0 } : {}),
    ...event.details,
  };
  return { type, body: JSON.stringify({ id: event.id, type, time: event.time, data }) };
}
