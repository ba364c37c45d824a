import pg from 'pg';

/** The channel every token change is announced on, with the token id as payload. */
export const CHANGE_CHANNEL = 'tessera_token_changes';
/** The channel a signing-key rotation is announced on (see database-key-ring.ts). */
export const KEY_CHANNEL = 'tessera_key_changes';

export interface ChangeHandlers {
  /** A committed change to this token (PostgreSQL delivers notifications at commit, in commit order). */
  onChange(tokenId: string): void;
  /** Signing keys were rotated: reload them. */
  onKeysChanged?(): void;
  /** Listening (again): whatever was missed while disconnected is unknown, so caches start afresh. */
  onConnected(): void;
  /** The connection is gone; `onConnected` follows once it is back. */
  onLost(error: unknown): void;
}

export interface ChangeListener {
  start(handlers: ChangeHandlers): void;
  stop(): Promise<void>;
}

/** How the feed's connection shows in `pg_stat_activity`, so operators (and tests) can find it. */
export const LISTENER_APPLICATION_NAME = 'tessera-change-feed';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/**
 * LISTENs on a connection of its own and reconnects with backoff for as long as it runs. A node
 * started while PostgreSQL is down simply keeps trying; nothing here throws at its caller.
 */
export class PostgresChangeListener implements ChangeListener {
  readonly #url: string;
  #client: pg.Client | undefined;
  #handlers: ChangeHandlers | undefined;
  #retryMs = RETRY_MIN_MS;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(url: string) {
    // In the URL: the connection string would override a separate `application_name` option.
    const named = new URL(url);
    named.searchParams.set('application_name', LISTENER_APPLICATION_NAME);
    this.#url = named.toString();
  }

  start(handlers: ChangeHandlers): void {
    this.#handlers = handlers;
    void this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({
      connectionString: this.#url,
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    client.on('notification', (message) => {
      if (message.channel === CHANGE_CHANNEL && message.payload) this.#handlers?.onChange(message.payload);
      else if (message.channel === KEY_CHANNEL) this.#handlers?.onKeysChanged?.();
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('the change feed connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}; LISTEN ${KEY_CHANNEL}`);
    } catch (error) {
      this.#lost(client, error);
      return;
    }
    if (this.#stopped) return void client.end().catch(() => {});
    this.#client = client;
    this.#retryMs = RETRY_MIN_MS;
    this.#handlers?.onConnected();
  }

  #lost(client: pg.Client, error: unknown): void {
    // Late events of a client already replaced (or of a stopped listener) change nothing.
    if (this.#stopped || (this.#client !== undefined && this.#client !== client)) return;
    this.#client = undefined;
    this.#handlers?.onLost(error);
    client.removeAllListeners();
    // An 'error' event with no listener would crash the process; this client is done either way.
    client.on('error', () => {});
    void client.end().catch(() => {});
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#connect(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }
}
