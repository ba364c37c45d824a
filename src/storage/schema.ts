import type { Generated } from 'kysely';

/** Row shapes as SQL sees them. Times are ISO-8601 text, JSON columns are text: the same on every dialect. */
export interface AccountsTable {
  username: string;
  email: string;
  password_hash: string;
  created: string;
  modified: string;
}

export interface TokensTable {
  id: string;
  username: string;
  usage: string;
  is_default: number;
  note: string;
  scopes: string;
  allowed_urls: string | null;
  extensions: string;
  rate_limit: string | null;
  expires_at: string | null;
  token_hash: string;
  token: string | null;
  created: string;
  modified: string;
  deleted_at: string | null;
  version: number;
  last_used: string | null;
  rotated_from: string | null;
  rotated_to: string | null;
  grace_until: string | null;
  leaked_at: string | null;
}

export interface TokenEventsTable {
  seq: Generated<number>;
  token_id: string;
  at: string;
}

export interface UsageCountsTable {
  username: string;
  token_id: string;
  service: string;
  outcome: string;
  hour: string;
  count: number;
}

export interface SessionsTable {
  id_hash: string;
  username: string;
  created: string;
  last_seen: string;
  expires_at: string;
  confirmed_until: string | null;
  confirm_failures: number;
  confirm_window_start: string | null;
  flash: string | null;
}

export interface SigningKeysTable {
  kid: string;
  created: string;
  active_from: string;
  /** `v1:<kek id>:<nonce>:<ciphertext+tag>`: never the secret itself. */
  sealed_secret: string;
}

export interface AuditEventsTable {
  seq: Generated<number>;
  id: string;
  username: string;
  time: string;
  action: string;
  actor: string;
  channel: string;
  ip: string | null;
  target: string;
  /** JSON of the event's metadata, or null. */
  details: string | null;
}

export interface WebhookDeliveriesTable {
  id: string;
  url: string;
  event_id: string;
  type: string;
  /** The JSON body to POST: `{id, type, time, data}`; never a secret. */
  payload: string;
  /** `pending`, `delivered` or `failed`. */
  status: string;
  attempts: number;
  next_attempt_at: string;
  lease_until: string | null;
  lease_owner: string | null;
  last_error: string | null;
  created: string;
  finished_at: string | null;
}

export interface TokenNoticesTable {
  token_id: string;
  kind: string;
  at: string;
}

export interface Database {
  accounts: AccountsTable;
  tokens: TokensTable;
  token_events: TokenEventsTable;
  usage_counts: UsageCountsTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  token_notices: TokenNoticesTable;
}
