export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

// A token may be glued to other text (`x_sk.…`, `%3Dsk.…`, `Bearer%20sk.…`) and its dots may be
// percent-encoded; only a letter or digit right in front (`disk.`, `Task.`) makes it not a token.
const TOKEN_PATTERN =
  /(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))([pst]k)(?:\.|%2[Ee])[A-Za-z0-9]{8,}(?:\.|%2[Ee])[A-Za-z0-9]+/g;
const QUERY_SECRET = /((?:access_token|token|password)=)[^&\s#"]*/gi;

/** Removes anything shaped like a token or a secret query value from a string. */
export function redact(text: string): string {
  return text.replace(QUERY_SECRET, '$1[REDACTED]').replace(TOKEN_PATTERN, '$1.[REDACTED]');
}

/** One JSON object per line; every string value is redacted, and JSON encoding keeps newlines escaped. */
export function createLogger(options: {
  readonly level: 'info' | 'silent';
  readonly write?: (line: string) => void;
}): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  function log(level: string, message: string, fields: LogFields = {}): void {
    if (options.level === 'silent') return;
    const entry = { time: new Date().toISOString(), level, msg: message, ...fields };
    write(`${JSON.stringify(entry, (_key, value) => (typeof value === 'string' ? redact(value) : value))}\n`);
  }
  return {
    info: (message, fields) => log('info', message, fields),
    warn: (message, fields) => log('warn', message, fields),
    error: (message, fields) => log('error', message, fields),
  };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
