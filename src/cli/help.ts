export const USAGE = `Usage: tessera <command> [options]

Commands:
  serve                                   Start the HTTP server (what npm start runs)
  migrate                                 Apply pending database migrations
  migrate-store --from <url> --to <url>   Copy a whole store into an empty database (server stopped)
  accounts create <username> --email <email> --password-stdin
                                          Create an account and its default public token
  tokens create <username> --scopes <a,b> [--note <text>] [--allowed-url <url>]... [--expires-at <time>]
                                          Create a token (a secret token is shown only here)
  tokens list <username>                  List an account's tokens
  tokens delete <username> <id>           Delete (revoke) a token
  tokens rotate <username> <id> --grace <seconds>
                                          Replace a token; the old one works for the grace period
  verify <token> [--scope <s>] [--referer <url>] [--origin <url>]
                                          Check a token; exit status 0 only if it is allowed
  audit export <username>                 Print an account's audit log as JSON (newest first)
  keys rotate                             Add a new signing key for temporary tokens
  keys list                               List signing key ids and creation times

Options:
  -h, --help                              Show help (also: tessera <command> --help)
  -v, --version                           Show the version

Settings come from the environment (PORT, HOST, TESSERA_DATA_DIR, TESSERA_DATABASE_URL, ...): see the README.
Output is JSON on stdout; errors are one line on stderr with a non-zero exit status.`;

export const COMMAND_HELP: Readonly<Record<string, string>> = {
  serve: `Usage: tessera serve

Starts the HTTP server on HOST:PORT (default 127.0.0.1:3000), applying migrations first.
Stops cleanly on SIGINT or SIGTERM.`,
  migrate: `Usage: tessera migrate

Applies pending schema migrations to TESSERA_DATABASE_URL and prints {"applied": [...]}.`,
  'migrate-store': `Usage: tessera migrate-store --from <database url> --to <database url>

Copies every account, token (deleted ones too), change-log entry, usage count and dashboard session
from one store into another, e.g. from sqlite:/var/lib/tessera/tessera.db to postgres://host/tessera.
URLs are sqlite:<path> or postgres://...; both are migrated to the latest schema first.
Stop every Tessera server on the source first: rows written during the copy would be missed.
The target must hold no data (nothing is merged); it is written in one transaction, so a failure
leaves it empty. The source's rows are only read (its schema is brought up to date, as by
tessera migrate). Signing keys kept in the database are copied sealed (the target's nodes need the
same TESSERA_KEY_ENCRYPTION_KEY); keys kept in TESSERA_DATA_DIR/signing-keys.json are taken into an
empty table by the first server started on the new URL with that data folder.
Prints {"from", "to", "copied": {"accounts", "tokens", "token_events", "usage_counts", "sessions",
"signing_keys", "audit_events"}}
with any password in the URLs shown as ***. See docs/postgresql.md.`,
  accounts: `Usage: tessera accounts create <username> --email <email> --password-stdin

Reads the password from standard input (one line), creates the account and its default public
token, and prints {"username", "email", "defaultToken"}.
Usernames: 1-32 characters of a-z, 0-9, "_" and "-", starting with a letter or digit.
Passwords: 12 to 128 characters.`,
  tokens: `Usage:
  tessera tokens create <username> --scopes <a,b> [--note <text>] [--allowed-url <url>]... [--expires-at <time>]
  tessera tokens list <username>
  tessera tokens delete <username> <id>
  tessera tokens rotate <username> <id> --grace <seconds>

create prints the token's metadata with "token" included: for a secret (sk) token this is the only
time it is shown. A token with any secret scope is secret. --allowed-url may be repeated.
--expires-at takes an ISO 8601 time with a zone (2027-06-30T00:00:00Z); past it the token is refused.
list prints the metadata of every live token; delete revokes a token (the default token is
replaced by a fresh one). rotate issues a token with the same settings (the default token's
replacement becomes the default) and prints it with "token"; the old one keeps working for
--grace seconds (0 to 604800, i.e. 7 days), then is refused as expired.`,
  verify: `Usage: tessera verify <token> [--scope <scope>] [--referer <url>] [--origin <url>]

Prints the decision as JSON: {"allowed": true, "username", "tokenId", "usage", "scopes"} or
{"allowed": false, "status", "reason", "message"}. Exit status 0 only when allowed.`,
  audit: `Usage: tessera audit export <username>

Prints every event of the account's audit log, newest first, as one JSON array of
{"id", "time", "action", "actor", "channel", "ip", "target", "details"}: the shape of
GET /audit/v1/{username}. Never contains a token, a password or a hash.`,
  keys: `Usage:
  tessera keys rotate
  tessera keys list

rotate adds a new signing key for temporary tokens; older keys keep verifying until every token
they signed has expired (one hour plus a minute of clock leeway), then are dropped.
With TESSERA_KEY_ENCRYPTION_KEY (always on PostgreSQL) the keys live in the database, sealed under
it: a new key signs 30 s after rotate, once every node has loaded it, and rotate also re-seals
every key under the first key listed in TESSERA_KEY_ENCRYPTION_KEY. Without it (SQLite), the keys
live in TESSERA_DATA_DIR/signing-keys.json and a new key signs at once.
Prints {"added", "active", "keys": [{"kid", "created", "activeFrom"}]}; never a secret.`,
};
