export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

// Every token's payload is base64 JSON, so it starts `eyJ`: that, not a word boundary, is what tells a
// token from text like `disk.production1.internal`. A token glued to other text (`abcsk.…`,
// `%3Dsk.…`), with percent-encoded dots or an upper-case prefix is still found.
const TOKEN_PATTERN = /([PpSsTt][Kk])(?:\.|%2[Ee])eyJ[A-Za-z0-9]{5,}(?:\.|%2[Ee])[A-Za-z0-9]+/g;
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
