import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { decide } from '../core/decision.ts';
import { TesseraError } from '../core/errors.ts';
import { toWire } from '../http/audit-routes.ts';
import { listen } from '../http/server.ts';
import { createLogger } from '../logging/logger.ts';
import { createServices, type Services } from '../services/create-services.ts';
import { migrateStore as copyBetween, maskDatabaseUrl, sameDatabase } from '../storage/copy-store.ts';
import { type DatabaseUrl, MIGRATION_OPTIONS, openDatabase, parseDatabaseUrl } from '../storage/database.ts';
import { migrateToLatest } from '../storage/migrations.ts';
import { UsageError } from './usage-error.ts';

type Handler = (args: readonly string[]) => Promise<number>;

const OPERATOR = { kind: 'operator' } as const;

const COMMANDS: Readonly<Record<string, Handler>> = {
  serve,
  migrate,
  'migrate-store': migrateStore,
  accounts: (args) => subcommand('accounts', args, { create: createAccount }),
  tokens: (args) =>
    subcommand('tokens', args, {
      create: createToken,
      list: listTokens,
      delete: deleteToken,
      rotate: rotateToken,
    }),
  verify,
  keys: (args) => subcommand('keys', args, { rotate: rotateKeys, list: listKeys }),
  audit: (args) => subcommand('audit', args, { export: exportAudit }),
};

export async function runCommand(command: string, args: readonly string[]): Promise<number> {
  const handler = COMMANDS[command];
  if (!handler) throw new UsageError(`unknown command "${command}" (see tessera --help)`);
  return handler(args);
}

function subcommand(
  name: string,
  args: readonly string[],
  handlers: Readonly<Record<string, Handler>>,
): Promise<number> {
  const [verb, ...rest] = args;
  const handler = verb === undefined ? undefined : handlers[verb];
  if (!handler) {
    throw new UsageError(
      `${name} needs one of: ${Object.keys(handlers).join(', ')} (see tessera ${name} --help)`,
    );
  }
  return handler(rest);
}

function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(
  args: readonly string[],
  options: T,
  positionals: readonly string[],
) {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>
  >;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  if (parsed.positionals.length !== positionals.length) {
    throw new UsageError(`expected ${positionals.map((p) => `<${p}>`).join(' ') || 'no arguments'}`);
  }
  return parsed;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withServices<T>(work: (services: Services) => Promise<T>): Promise<T> {
  const services = await createServices(loadConfig());
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

async function serve(args: readonly string[]): Promise<number> {
  parse(args, {}, []);
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  // Bound first: while the services wait for the database, /healthz says alive and the rest 503.
  const listening = await listen(config);
  let services: Services | undefined;
  let server: Awaited<ReturnType<typeof listening.serve>>;
  try {
    services = await createServices(config, {
      onRedisError: (error) =>
        logger.warn('redis unreachable: rate limits counted per node', {
          error: String((error as Error).message ?? error),
        }),
      onKeyRingError: (error) =>
        logger.warn('signing keys not reloaded: the keys already loaded stay in use', {
          error: String((error as Error).message ?? error),
        }),
      onWebhookError: (failure) => logger.warn('webhook delivery failed; it will be retried', failure),
      onClockSkew: (skewMs) =>
        logger.warn('this machine clock differs from the database clock', { skewSeconds: skewMs / 1000 }),
      onDatabaseWait: (error, retryInMs) =>
        logger.warn('waiting for the database', {
          error: String((error as Error).message ?? error),
          retryInMs,
        }),
    });
    server = await listening.serve(services, logger);
  } catch (error) {
    await listening.close();
    await services?.close();
    throw error;
  }
  logger.info('listening', { url: server.url, dataDir: config.dataDir });
  if (!config.publicUrl && (config.host === '0.0.0.0' || config.host === '::')) {
    logger.warn(
      'TESSERA_PUBLIC_URL is not set: pagination links point at 127.0.0.1, which remote clients cannot reach',
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await services.close();
  logger.info('stopped');
  return 0;
}

async function migrate(args: readonly string[]): Promise<number> {
  parse(args, {}, []);
  const db = openDatabase(parseDatabaseUrl(loadConfig().databaseUrl), MIGRATION_OPTIONS);
  try {
    print({ applied: await migrateToLatest(db) });
  } finally {
    await db.destroy();
  }
  return 0;
}

async function migrateStore(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { from: { type: 'string' }, to: { type: 'string' } }, []);
  if (!values.from || !values.to) throw new UsageError('--from and --to are required (database URLs)');
  const from = databaseUrlOption('--from', values.from);
  const to = databaseUrlOption('--to', values.to);
  if (sameDatabase(from, to)) throw new UsageError('--from and --to name the same database');
  const copied = await copyBetween(from, to);
  print({ from: maskDatabaseUrl(values.from), to: maskDatabaseUrl(values.to), copied });
  return 0;
}

function databaseUrlOption(flag: string, url: string): DatabaseUrl {
  try {
    const parsed = parseDatabaseUrl(url);
    if (parsed.kind === 'sqlite' && parsed.path === ':memory:') {
      throw new TypeError(`${flag}: sqlite::memory: holds no installation`);
    }
    return parsed;
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/^TESSERA_DATABASE_URL/, flag));
  }
}

async function createAccount(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { email: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    ['username'],
  );
  if (!values.email) throw new UsageError('--email is required');
  if (!values['password-stdin'])
    throw new UsageError('--password-stdin is required (passwords are never arguments)');
  const password = (await readStdin()).replace(/\r?\n$/, '');
  const [username] = positionals as [string];
  print(
    await withServices((s) =>
      s.accounts.createAccount({ username, email: values.email as string, password }),
    ),
  );
  return 0;
}

async function createToken(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      scopes: { type: 'string' },
      note: { type: 'string' },
      'allowed-url': { type: 'string', multiple: true },
      'expires-at': { type: 'string' },
    },
    ['username'],
  );
  const expiresAt = values['expires-at'] === undefined ? null : parseExpiry(values['expires-at']);
  if (values.scopes === undefined) throw new UsageError('--scopes is required (comma-separated)');
  const scopes = values.scopes
    .split(',')
    .map((scope) => scope.trim())
    .filter(Boolean);
  const allowedUrls = values['allowed-url'] ?? [];
  const request = {
    note: values.note ?? '',
    scopes,
    allowedUrls: allowedUrls.length > 0 ? allowedUrls : null,
    extensions: {},
    rateLimit: null,
    expiresAt,
  };
  print(await withServices((s) => s.tokens.create(OPERATOR, positionals[0] as string, request)));
  return 0;
}

async function listTokens(args: readonly string[]): Promise<number> {
  const { positionals } = parse(args, {}, ['username']);
  const username = positionals[0] as string;
  const all = await withServices(async (s) => {
    const tokens = [];
    let start: string | undefined;
    do {
      const page = await s.tokens.list(OPERATOR, username, {
        sortBy: 'created',
        limit: 100,
        ...(start ? { start } : {}),
      });
      tokens.push(...page.tokens);
      start = page.next;
    } while (start);
    return tokens;
  });
  print(all);
  return 0;
}

async function deleteToken(args: readonly string[]): Promise<number> {
  const { positionals } = parse(args, {}, ['username', 'id']);
  const [username, id] = positionals as [string, string];
  await withServices((s) => s.tokens.remove(OPERATOR, username, id));
  print({ deleted: id });
  return 0;
}

/** An ISO 8601 time with a zone, normalised to UTC; anything else is a usage error. */
function parseExpiry(text: string): string {
  const time = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) || Number.isNaN(time)) {
    throw new UsageError('--expires-at must be an ISO 8601 time with a zone, e.g. 2027-06-30T00:00:00Z');
  }
  return new Date(time).toISOString();
}

/** Prints the account's whole audit log, newest first, as a JSON array (the API's event shape). */
async function exportAudit(args: readonly string[]): Promise<number> {
  const { positionals } = parse(args, {}, ['username']);
  const events = await withServices(async (s) => {
    const all = [];
    for await (const event of s.audit.all(OPERATOR, positionals[0] as string)) all.push(toWire(event));
    return all;
  });
  print(events);
  return 0;
}

async function rotateToken(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { grace: { type: 'string' } }, ['username', 'id']);
  const [username, id] = positionals as [string, string];
  const grace = values.grace ?? '';
  if (!/^\d{1,6}$/.test(grace)) throw new UsageError('--grace <seconds> is required: 0 to 604800');
  print(await withServices((s) => s.tokens.rotate(OPERATOR, username, id, { gracePeriod: Number(grace) })));
  return 0;
}

async function verify(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { scope: { type: 'string' }, referer: { type: 'string' }, origin: { type: 'string' } },
    ['token'],
  );
  const decision = await withServices(async (s) => {
    const inspection = await s.tokens.inspect(positionals[0] as string);
    return decide({ ...inspection, scope: values.scope, referer: values.referer, origin: values.origin });
  });
  print(decision);
  return decision.allowed ? 0 : 1;
}

async function rotateKeys(args: readonly string[]): Promise<number> {
  parse(args, {}, []);
  print(
    await withServices(async (s) => {
      const added = await s.keyRing.rotate();
      return { added, active: s.keyRing.activeKey().id, keys: await s.keyRing.listKeys() };
    }),
  );
  return 0;
}

async function listKeys(args: readonly string[]): Promise<number> {
  parse(args, {}, []);
  print(
    await withServices(async (s) => ({ active: s.keyRing.activeKey().id, keys: await s.keyRing.listKeys() })),
  );
  return 0;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new TesseraError('invalid_field', '--password-stdin expects the password on standard input');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
