export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

// No word boundary in front: a token glued to other text (`%3Dsk.…`, `Bearer%20sk.…`) is still a
// token, and so is one whose dots are percent-encoded.
const TOKEN_PATTERN = /([pst]k)(?:\.|%2e)[A-Za-z0-9]{8,}(?:\.|%2e)[A-Za-z0-9]+/gi;
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
