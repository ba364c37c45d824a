import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { encodeBase62 } from '../core/base62.ts';
import { TesseraError } from '../core/errors.ts';
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
  /**
   * This machine's clock and the database's now differ by more than 5 s (database minus node, in
   * ms): at open, and whenever a periodic refresh finds the difference grown past 5 s again.
   */
  readonly onClockSkew?: (skewMs: number) => void;
}

/** A difference between this node's clock and the database's that is reported (and logged)... */
const CLOCK_SKEW_WARNING_MS = 5_000;
/** ...and the one it must come back under before a new excess is reported again. */
const CLOCK_SKEW_REARM_MS = 4_000;
/** A measurement whose round trip took longer says little about the clocks: it is dropped. */
const CLOCK_SAMPLE_MAX_RTT_MS = 1_000;

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
  readonly #onClockSkew: (skewMs: number) => void;
  #measuring = false;
  /** An excess of skew was reported and the clocks have not come back in step since. */
  #skewReported = false;
  #stopped = false;
  #loaded: readonly LoadedKey[] = [];
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;
  #missReloadAt = 0;
  /** When the table was last read successfully (this node's clock). */
  lastRefreshAt = 0;
  /** Failed reloads since start (shown in /metrics). */
  errors = 0;
  /** The database's clock minus this node's, measured at start and at every periodic refresh. */
  clockSkewMs = 0;

  private constructor(db: Kysely<Database>, options: DatabaseKeyRingOptions) {
    this.#db = db;
    this.#keys = options.keys;
    this.#clock = options.clock;
    this.#activationDelayMs = options.activationDelayMs ?? DEFAULT_ACTIVATION_DELAY_MS;
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    this.#onError = options.onError ?? (() => {});
    this.#onClockSkew = options.onClockSkew ?? (() => {});
  }

  /**
   * Loads the keys, creating the first one (or importing a data folder's key file) when the table
   * is empty. Fails, naming the fingerprint, when a stored key opens with none of the configured keys.
   */
  static async open(db: Kysely<Database>, options: DatabaseKeyRingOptions): Promise<DatabaseKeyRing> {
    const ring = new DatabaseKeyRing(db, options);
    await ring.#measureSkew();
    await ring.#bootstrap(options.importFrom);
    ring.#loaded = ring.#decode(await ring.#rows(ring.#db), [], true);
    ring.lastRefreshAt = ring.#clock.now();
    return ring;
  }

  /**
   * Starts the periodic reload (the server), which also measures the clocks again, so a clock that
   * drifts after the start shows in the metric and the log. One-shot uses such as the CLI need not.
   */
  start(): void {
    this.#stopped = false;
    this.#timer ??= setInterval(() => {
      void this.refresh();
      void this.#measureSkew();
    }, this.#refreshMs);
    this.#timer.unref();
  }

  /**
   * The database's clock minus this node's, at the midpoint of a round trip on a connection already
   * held (so waiting for the pool is not counted); one at a time. Reports an excess once, until the
   * clocks are back within 4 s. A failed or slow measurement keeps the last value: an unreachable
   * database is reported by the refresh beside it.
   */
  async #measureSkew(): Promise<void> {
    if (this.#measuring) return;
    this.#measuring = true;
    try {
      const sample = await this.#db.connection().execute(async (connection) => {
        const before = this.#clock.now();
        const databaseNow = await databaseTime(connection);
        const after = this.#clock.now();
        return { skew: databaseNow - Math.round((before + after) / 2), roundTrip: after - before };
      });
      if (sample.roundTrip > CLOCK_SAMPLE_MAX_RTT_MS) return;
      this.clockSkewMs = sample.skew;
      const apart = Math.abs(sample.skew);
      if (apart < CLOCK_SKEW_REARM_MS) this.#skewReported = false;
      else if (apart > CLOCK_SKEW_WARNING_MS && !this.#skewReported && !this.#stopped) {
        this.#skewReported = true;
        this.#onClockSkew(sample.skew);
      }
    } catch {
      // Kept as it was; see above.
    } finally {
      this.#measuring = false;
    }
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** How many keys this node holds (never 0 once open). */
  get size(): number {
    return this.#loaded.length;
  }

  activeKey(): SigningKey {
    const now = this.#clock.now();
    const active = this.#loaded.findLast((key) => key.activeFrom <= now) ?? this.#loaded[0];
    if (!active) throw new Error('no signing key loaded');
    return active.key;
  }

  /**
   * The key named `id` while it verifies. An unknown id is refused (and triggers a reload), except
   * when this node has not read the table for longer than the activation delay: the key may be one
   * it missed, so it cannot tell, and answers "unavailable" (503) rather than "invalid".
   */
  findKey(id: string): SigningKey | undefined {
    const index = this.#loaded.findIndex((key) => key.kid === id);
    const found = this.#loaded[index];
    const now = this.#clock.now();
    if (!found) {
      this.#reloadOnMiss(now);
      if (now - this.lastRefreshAt > this.#activationDelayMs) throw new TesseraError('unavailable');
      return undefined;
    }
    const successor = this.#loaded[index + 1];
    if (successor && successor.activeFrom + RETIREMENT_MS < now) return undefined;
    return found.key;
  }

  /**
   * Reloads the table; a call during a read gets one more read after it, so a notice is never
   * answered by a read that started before the change. Errors keep the keys already loaded.
   */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        try {
          this.#apply(await this.#rows(this.#db));
          this.lastRefreshAt = this.#clock.now();
        } catch (error) {
          this.errors += 1;
          this.#onError(error);
        }
      } while (this.#again);
    };
    this.#refreshing = run().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /**
   * Adds a key that signs after the activation delay, drops keys whose every token has expired,
   * and re-seals under the current key-encryption key whatever an older one sealed. Returns the
   * new key id. Times come from the database's clock, so a machine with a wrong clock cannot
   * activate a key early, bury it before the current one, or drop a key that still verifies.
   * On PostgreSQL every node hears of the rotation at commit.
   */
  async rotate(): Promise<string> {
    const kid = newKid();
    await this.#db.transaction().execute(async (trx) => {
      // On SQLite the first statement writes, so the transaction holds the write lock from here on.
      if (isPostgres(trx)) await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
      else await trx.deleteFrom('signing_keys').where('kid', '=', kid).execute();
      const now = await databaseTime(trx);
      const rows = await this.#rows(trx);
      const keys = this.#decode(rows, [], true);
      const latest = Math.max(now, ...keys.map((key) => key.activeFrom));
      await trx
        .insertInto('signing_keys')
        .values(this.#row(kid, now, latest + this.#activationDelayMs, randomBytes(32)))
        .execute();
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

  #reloadOnMiss(now: number): void {
    if (now - this.#missReloadAt < MISS_RELOAD_MS) return;
    this.#missReloadAt = now;
    void this.refresh();
  }

  async #rows(db: Kysely<Database>): Promise<SigningKeysTable[]> {
    return db.selectFrom('signing_keys').selectAll().orderBy('active_from').orderBy('kid').execute();
  }

  /**
   * A key's secret never changes, so keys already held are kept as they are and only new rows are
   * opened: a row this node cannot open (another node re-sealed it under a key-encryption key not
   * listed here yet) costs nothing it had. A table that reads as empty (rows deleted by hand) never
   * empties the ring: the keys held keep verifying and the error is reported.
   */
  #apply(rows: readonly SigningKeysTable[]): void {
    const next = this.#decode(rows, this.#loaded, false);
    if (next.length === 0 && this.#loaded.length > 0) {
      throw new Error('the signing_keys table holds no key this node can open; keeping the keys loaded');
    }
    this.#loaded = next;
  }

  /**
   * Opens every row not already held. At start (strict) a row no configured key opens stops the
   * node: it would otherwise refuse that key's tokens without saying why. Later it is reported.
   */
  #decode(rows: readonly SigningKeysTable[], held: readonly LoadedKey[], strict: boolean): LoadedKey[] {
    const loaded: LoadedKey[] = [];
    for (const row of rows) {
      const known = held.find((key) => key.kid === row.kid);
      const activeFrom = Date.parse(row.active_from);
      if (known) {
        loaded.push({ ...known, activeFrom, sealedWith: sealedWith(row.sealed_secret) });
        continue;
      }
      let secret: Buffer;
      try {
        secret = open(this.#keys, row.kid, row.sealed_secret);
        if (secret.length !== 32 || !Number.isFinite(activeFrom)) throw new SealError('not a signing key');
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
        activeFrom,
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

  /**
   * The first node to start on an empty table writes the first key, or takes over the keys of its
   * data folder's `signing-keys.json` (checked first: a bad file stops the node, naming the entry,
   * never its content) and schedules a fresh key, so the copies of those keys on disk stop
   * verifying an hour after it signs. The file is then renamed `signing-keys.json.imported`.
   */
  async #bootstrap(importFrom: string | undefined): Promise<void> {
    const existing = await this.#db.selectFrom('signing_keys').select('kid').limit(1).execute();
    if (existing.length > 0) return;
    const now = await databaseTime(this.#db);
    const seed = importFrom ? readKeyFile(importFrom) : undefined;
    const rows = seed
      ? [
          ...seed.keys.map((key) => this.#row(key.kid, key.created, key.created, key.secret)),
          this.#row(newKid(), now, now + this.#activationDelayMs, randomBytes(32)),
        ]
      : [this.#row(newKid(), now, now, randomBytes(32))];
    const values = sql.join(
      rows.map((row) => sql`(${row.kid}, ${row.created}, ${row.active_from}, ${row.sealed_secret})`),
    );
    // One statement that writes only into an empty table (the subquery is read once, before any
    // row goes in): atomic by itself on SQLite; on PostgreSQL the table lock orders concurrent starts.
    const insert = sql`insert into signing_keys (kid, created, active_from, sealed_secret)
      select column1, column2, column3, column4 from (values ${values}) as seed
      where not exists (select 1 from signing_keys)`;
    let inserted: bigint | undefined;
    if (!isPostgres(this.#db)) inserted = (await insert.execute(this.#db)).numAffectedRows;
    else {
      inserted = await this.#db.transaction().execute(async (trx) => {
        await sql`lock table signing_keys in share row exclusive mode`.execute(trx);
        return (await insert.execute(trx)).numAffectedRows;
      });
    }
    if (seed && Number(inserted ?? 0) > 0) renameSync(seed.path, `${seed.path}.imported`);
  }
}

/** Now, by the database's clock: every node compares key times with the same reference. */
async function databaseTime(db: Kysely<Database>): Promise<number> {
  const query = isPostgres(db)
    ? sql<{
        now: string;
      }>`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as now`
    : sql<{ now: string }>`select strftime('%Y-%m-%dT%H:%M:%fZ', 'now') as now`;
  const row = (await query.execute(db)).rows[0];
  const time = Date.parse(row?.now ?? '');
  if (!Number.isFinite(time)) throw new Error('the database did not tell the time');
  return time;
}

function newKid(): string {
  return encodeBase62(randomBytes(9)).slice(0, 12);
}

interface FileKey {
  readonly kid: string;
  readonly created: number;
  readonly secret: Buffer;
}

const KID_PATTERN = /^[A-Za-z0-9]{1,32}$/;
const SECRET_PATTERN = /^[A-Za-z0-9+/]{43}=$/;

/**
 * The keys of a data folder's `signing-keys.json`, oldest first; none when there is no such file.
 * Every entry must be a key this program wrote: base62 id, a time, 32 bytes of canonical base64.
 * Errors name the file and the entry, never what it holds.
 */
function readKeyFile(dataDir: string): { readonly path: string; readonly keys: FileKey[] } | undefined {
  const path = join(dataDir, KEY_FILE_NAME);
  if (!existsSync(path)) return undefined;
  const refuse = (what: string): never => {
    throw new Error(
      `${path}: ${what}; fix or remove the file before starting with TESSERA_KEY_ENCRYPTION_KEY`,
    );
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return refuse('not valid JSON');
  }
  const entries = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(entries) || entries.length === 0) return refuse('holds no "keys"');
  const seen = new Set<string>();
  const keys = entries.map((entry: unknown, index) => {
    const { kid, created, secret } = (entry ?? {}) as Record<string, unknown>;
    const time = typeof created === 'string' ? Date.parse(created) : Number.NaN;
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid) || seen.has(kid))
      return refuse(`key ${index + 1}: bad kid`);
    if (!Number.isFinite(time)) return refuse(`key ${index + 1}: bad created time`);
    if (typeof secret !== 'string' || !SECRET_PATTERN.test(secret))
      return refuse(`key ${index + 1}: bad secret`);
    const bytes = Buffer.from(secret, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== secret)
      return refuse(`key ${index + 1}: bad secret`);
    seen.add(kid);
    return { kid, created: time, secret: bytes };
  });
  return { path, keys };
}
