import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { encodeBase62 } from '../core/base62.ts';
import type { Clock, KeyRing } from '../core/ports.ts';
import type { SigningKey } from '../core/token-format.ts';
import { MAX_TEMPORARY_LIFETIME_MS } from '../core/token-policy.ts';
import { CLOCK_LEEWAY_SECONDS } from '../core/token-status.ts';
import { isPostgres } from './database.ts';
import { KEY_FILE_NAME } from './file-key-ring.ts';
import { type KeyEncryptionKeys, open, SealError, seal, sealedWith } from './key-sealing.ts';
import { KEY_CHANNEL } from './postgres-listener.ts';
import type { Database, SigningKeysTable } from './schema.ts';

/** What `tessera keys list` shows of a key: never its secret. */
export interface KeyInfo {
  readonly kid: string;
  readonly created: string;
  /** From when the key signs; a rotation publishes a key before it signs anything. */
  readonly activeFrom: string;
}

/** A key ring an operator can rotate and list (the CLI and the server use the same one). */
export interface ManagedKeyRing extends KeyRing {
  rotate(): Promise<string>;
  listKeys(): Promise<readonly KeyInfo[]>;
}

/** A superseded key keeps verifying for the longest tk lifetime plus clock leeway. */
const RETIREMENT_MS = MAX_TEMPORARY_LIFETIME_MS + CLOCK_LEEWAY_SECONDS * 1000;

export interface DatabaseKeyRingOptions {
  readonly keys: KeyEncryptionKeys;
  readonly clock: Clock;
  /**
   * A rotated key signs only this long after it was written, so every node has loaded it (pushed
   * at once on PostgreSQL, polled every `refreshMs` otherwise) before a token signed with it arrives.
   */
  readonly activationDelayMs?: number;
  readonly refreshMs?: number;
  /** A data folder whose `signing-keys.json` seeds an empty table, so its tokens keep verifying. */
  readonly importFrom?: string;
  /** A refresh failed (the database, or a row no configured key opens); the keys known stay in use. */
  readonly onError?: (error: unknown) => void;
}

interface LoadedKey {
  readonly kid: string;
  readonly created: string;
  readonly activeFrom: number;
  readonly sealedWith: string | undefined;
  readonly key: SigningKey;
}

const DEFAULT_ACTIVATION_DELAY_MS = 30_000;
const DEFAULT_REFRESH_MS = 5_000;
/** How often an unknown key id may trigger an early reload. */
const MISS_RELOAD_MS = 1_000;

/**
 * Signing keys in the database, each secret sealed under the operator's key-encryption key. Reads
 * are synchronous from memory (the hot path never waits on the database); the table is reloaded on
 * a rotation notice, every few seconds, and when a token names a key this node does not know yet.
 */
export class DatabaseKeyRing implements ManagedKeyRing {
  readonly #db: Kysely<Database>;
  readonly #keys: KeyEncryptionKeys;
  readonly #clock: Clock;
  readonly #activationDelayMs: number;
  readonly #refreshMs: number;
  readonly #onError: (error: unknown) => void;
  #loaded: readonly LoadedKey[] = [];
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #missReloadAt = 0;
  /** Failed reloads since start (shown in /metrics). */
  errors = 0;

  private constructor(db: Kysely<Database>, options: DatabaseKeyRingOptions) {
    this.#db = db;
    this.#keys = options.keys;
    this.#clock = options.clock;
    this.#activationDelayMs = options.activationDelayMs ?? DEFAULT_ACTIVATION_DELAY_MS;
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    this.#onError = options.onError ?? (() => {});
  }

  /**
   * Loads the keys, creating the first one (or importing a data folder's key file) when the table
   * is empty. Fails, naming the fingerprint, when a stored key opens with none of the configured keys.
   */
  static async open(db: Kysely<Database>, options: DatabaseKeyRingOptions): Promise<DatabaseKeyRing> {
    const ring = new DatabaseKeyRing(db, options);
    await ring.#bootstrap(options.importFrom);
    ring.#loaded = ring.#decode(await ring.#rows(ring.#db), true);
    return ring;
  }

  /** Starts the periodic reload (the server); one-shot uses such as the CLI need not. */
  start(): void {
    this.#timer ??= setInterval(() => void this.refresh(), this.#refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  activeKey(): SigningKey {
    const now = this.#clock.now();
    const active = this.#loaded.findLast((key) => key.activeFrom <= now) ?? this.#loaded[0];
    if (!active) throw new Error('no signing key loaded');
    return active.key;
  }

  findKey(id: string): SigningKey | undefined {
    const index = this.#loaded.findIndex((key) => key.kid === id);
    const found = this.#loaded[index];
    if (!found) {
      this.#reloadOnMiss();
      return undefined;
    }
    const successor = this.#loaded[index + 1];
    if (successor && successor.activeFrom + RETIREMENT_MS < this.#clock.now()) return undefined;
    return found.key;
  }

  /** Reloads the table; concurrent calls share one read. Errors keep the keys already loaded. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#rows(this.#db)
      .then((rows) => {
        this.#loaded = this.#decode(rows, false);
      })
      .catch((error: unknown) => {
        this.errors += 1;
        this.#onError(error);
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /**
   * Adds a key that signs after the activation delay, drops keys whose every token has expired,
   * and re-seals under the current key-encryption key whatever an older one sealed. Returns the
   * new key id. On PostgreSQL every node hears of it at commit.
   */
  async rotate(): Promise<string> {
    const now = this.#clock.now();
    const kid = newKid();
    await this.#db.transaction().execute(async (trx) => {
      // On SQLite the first statement writes, so the transaction holds the write lock from here on.
      if (isPostgres(trx)) await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
      await trx
        .insertInto('signing_keys')
        .values(this.#row(kid, now, now + this.#activationDelayMs, randomBytes(32)))
        .execute();
      const rows = await this.#rows(trx);
      const keys = this.#decode(rows, true);
      const retired = keys.filter((_key, index) => {
        const successor = keys[index + 1];
        return successor !== undefined && successor.activeFrom + RETIREMENT_MS < now;
      });
      if (retired.length > 0) {
        await trx
          .deleteFrom('signing_keys')
          .where(
            'kid',
            'in',
            retired.map((key) => key.kid),
          )
          .execute();
      }
      for (const key of keys) {
        if (retired.includes(key) || key.sealedWith === this.#keys.current.id) continue;
        await trx
          .updateTable('signing_keys')
          .set({ sealed_secret: seal(this.#keys, key.kid, Buffer.from(key.key.secret)) })
          .where('kid', '=', key.kid)
          .execute();
      }
      if (isPostgres(trx)) await sql`select pg_notify(${KEY_CHANNEL}, ${kid})`.execute(trx);
    });
    await this.refresh();
    return kid;
  }

  async listKeys(): Promise<readonly KeyInfo[]> {
    const rows = await this.#rows(this.#db);
    return rows.map((row) => ({ kid: row.kid, created: row.created, activeFrom: row.active_from }));
  }

  #reloadOnMiss(): void {
    const now = this.#clock.now();
    if (now - this.#missReloadAt < MISS_RELOAD_MS) return;
    this.#missReloadAt = now;
    void this.refresh();
  }

  async #rows(db: Kysely<Database>): Promise<SigningKeysTable[]> {
    return db.selectFrom('signing_keys').selectAll().orderBy('active_from').orderBy('kid').execute();
  }

  /**
   * Opens every row. At start (strict) a row no configured key opens stops the node: it would
   * otherwise refuse that key's tokens without saying why. Later such a row is reported and skipped.
   */
  #decode(rows: readonly SigningKeysTable[], strict: boolean): LoadedKey[] {
    const loaded: LoadedKey[] = [];
    for (const row of rows) {
      let secret: Buffer;
      try {
        secret = open(this.#keys, row.kid, row.sealed_secret);
      } catch (error) {
        if (!(error instanceof SealError)) throw error;
        const message =
          `signing key ${row.kid}: ${error.message}. TESSERA_KEY_ENCRYPTION_KEY must list the key ` +
          `(fingerprint ${sealedWith(row.sealed_secret) ?? 'unknown'}) the other nodes use`;
        if (strict) throw new Error(message);
        this.errors += 1;
        this.#onError(new Error(message));
        continue;
      }
      loaded.push({
        kid: row.kid,
        created: row.created,
        activeFrom: Date.parse(row.active_from),
        sealedWith: sealedWith(row.sealed_secret),
        key: { id: row.kid, secret },
      });
    }
    return loaded;
  }

  #row(kid: string, created: number, activeFrom: number, secret: Buffer): SigningKeysTable {
    return {
      kid,
      created: new Date(created).toISOString(),
      active_from: new Date(activeFrom).toISOString(),
      sealed_secret: seal(this.#keys, kid, secret),
    };
  }

  /** The first node to start on an empty table writes the first keys; the others see them. */
  async #bootstrap(importFrom: string | undefined): Promise<void> {
    const existing = await this.#db.selectFrom('signing_keys').select('kid').limit(1).execute();
    if (existing.length > 0) return;
    const now = this.#clock.now();
    const seed = importFrom ? readKeyFile(importFrom) : undefined;
    const rows = seed
      ? seed.map((key) => this.#row(key.kid, Date.parse(key.created), Date.parse(key.created), key.secret))
      : [this.#row(newKid(), now, now, randomBytes(32))];
    const values = sql.join(
      rows.map((row) => sql`(${row.kid}, ${row.created}, ${row.active_from}, ${row.sealed_secret})`),
    );
    // One statement that writes only into an empty table (the subquery is read once, before any
    // row goes in): atomic by itself on SQLite; on PostgreSQL the table lock orders concurrent starts.
    const insert = sql`insert into signing_keys (kid, created, active_from, sealed_secret)
      select column1, column2, column3, column4 from (values ${values}) as seed
      where not exists (select 1 from signing_keys)`;
    if (!isPostgres(this.#db)) return void (await insert.execute(this.#db));
    await this.#db.transaction().execute(async (trx) => {
      await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
      await insert.execute(trx);
    });
  }
}

function newKid(): string {
  return encodeBase62(randomBytes(9)).slice(0, 12);
}

interface FileKey {
  readonly kid: string;
  readonly created: string;
  readonly secret: Buffer;
}

/** The keys of a data folder's `signing-keys.json`, oldest first; none when there is no such file. */
function readKeyFile(dataDir: string): FileKey[] | undefined {
  const path = join(dataDir, KEY_FILE_NAME);
  if (!existsSync(path)) return undefined;
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as {
    keys?: Array<{ kid: string; created: string; secret: string }>;
  };
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) return undefined;
  return parsed.keys.map((key) => ({
    kid: key.kid,
    created: key.created,
    secret: Buffer.from(key.secret, 'base64'),
  }));
}
