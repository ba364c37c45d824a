/**
 * The security plan's checklist (../shared/reference/security-plan.md, section 6: T01-T74) as Tessera
 * answers it: what each attack or fault meets, the tests that prove it, and which recorded figures
 * belong to it. scripts/security-report.ts renders it into docs/security.md;
 * test/security-docs.test.ts checks that every row is here once and every test named exists.
 *
 * A test reference names the file and a piece of the test's title exactly as it is written in the
 * file (for titles built from a template, the literal part).
 */

export interface TestRef {
  readonly file: string;
  readonly title: string;
}

export interface ChecklistRow {
  readonly id: string;
  readonly section: 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H';
  readonly attack: string;
  /** Tessera's behaviour, deviations from the plan included. */
  readonly answer: string;
  readonly tests: readonly TestRef[];
  /** Figure rows (test/helpers/figures.ts, bench `--json`) shown with this row. */
  readonly figures?: readonly string[];
}

export const SECTIONS: readonly (readonly [ChecklistRow['section'], string])[] = [
  ['A', 'Token format, storage, verification'],
  ['B', 'Tokens API authorization and validation'],
  ['C', 'URL restrictions'],
  ['D', 'Dashboard authentication and sessions'],
  ['E', 'Concurrency'],
  ['F', 'Durability and dependency faults'],
  ['G', 'Load and abuse'],
  ['H', 'Fuzz campaign'],
];

/** Test files whose figures `npm run security:figures` collects (run one at a time). */
export const FIGURE_TESTS: readonly string[] = [
  'test/fuzz-http.test.ts',
  'test/secrets-at-rest.test.ts',
  'test/model-lifecycle.test.ts',
  'test/concurrency.test.ts',
  'test/dependency-faults.test.ts',
  'test/disk-full.test.ts',
  'test/crash-durability.test.ts',
  'test/brute-force.test.ts',
  'test/garbage-without-store.test.ts',
  'test/clock-skew.test.ts',
  'test/usage-crash.test.ts',
];

/** Benchmarks run with `--json <file>` by `npm run security:figures`. */
export const FIGURE_BENCHMARKS: readonly string[] = [
  'bench/revocation.ts',
  'bench/token-timing.ts',
  'bench/signin-timing.ts',
  'bench/signin-flood.ts',
];

const t = (file: string, title: string): TestRef => ({ file, title });

export const CHECKLIST: readonly ChecklistRow[] = [
  // A. Token format, storage, verification
  {
    id: 'T01',
    section: 'A',
    attack:
      "After a full run, search the database and its WAL, a PostgreSQL dump, PostgreSQL's table files, WAL and log of every statement with its parameters, Redis keys, RDB and AOF, and every log for secrets",
    answer:
      'Secret tokens are stored as SHA-256 digests, temporary tokens not at all, passwords as Argon2id hashes, session ids as digests, signing keys sealed (AES-256-GCM) on PostgreSQL. Public tokens are stored in clear on purpose: they can be shown again, as at Mapbox.',
    tests: [
      t('test/secrets-at-rest.test.ts', 'SQLite: after the full run no secret token'),
      t('test/secrets-at-rest.test.ts', 'PostgreSQL + Redis: after the full run no secret token'),
      t(
        'test/secrets-at-rest.test.ts',
        'scanner: finds a planted value in every spelling it claims to search',
      ),
      t(
        'test/operations.test.ts',
        'passwords are argon2id hashes with OWASP parameters; secret tokens are digests only',
      ),
      t('test/operations.test.ts', 'never contain tokens, wherever the request carried them'),
      t('test/audit.test.ts', 'no event ever holds a token, a password or a hash'),
      t('test/key-ring.test.ts', 'the database holds the secret only sealed'),
    ],
    figures: ['T01'],
  },
  {
    id: 'T02',
    section: 'A',
    attack: '10,000 tokens: duplicates, charset, length, checksum, entropy',
    answer:
      '32 bytes from the CSPRNG (256 bits) as 43 base62 characters plus a 6-character CRC-32; 10,000 are distinct and their characters pass a chi-square test of uniformity.',
    tests: [
      t('src/core/token-format.test.ts', '10,000 tokens are distinct'),
      t('src/core/token-format.test.ts', 'the secret part is 32 random bytes in 43 base62 chars'),
      t('src/core/token-format.test.ts', 'base62 characters equally frequent (chi-square)'),
    ],
  },
  {
    id: 'T03',
    section: 'A',
    attack: '1,000 real tokens with one character changed',
    answer: '401 each; a bad checksum is refused before any store lookup.',
    tests: [
      t(
        'test/garbage-without-store.test.ts',
        '1,000 one-character typos in the secret part are refused without one store lookup',
      ),
      t(
        'src/core/token-format.test.ts',
        'every single-character change is unparseable or fails the checksum',
      ),
    ],
  },
  {
    id: 'T04',
    section: 'A',
    attack:
      'Empty token, bare Bearer, NUL bytes, non-ASCII, 10 KB token, 100 KB header, wrong or upper-case prefix',
    answer:
      'Tokens API: 401 "Unauthorized" for all (its retrieve endpoint reports the code instead, as Mapbox\'s does). Forward-auth: 401 with a reason (missing, malformed, invalid); 431 from Node for oversized headers. Never a 5xx.',
    tests: [
      t(
        'test/forward-auth-answers.test.ts',
        'malformed: not three parts, unknown prefix, broken payload, bad checksum',
      ),
      t(
        'test/forward-auth-hostile.test.ts',
        'a 100 KB token in the query or the Bearer header: a 4xx (431 from Node), never a 5xx',
      ),
      t(
        'test/forward-auth-hostile.test.ts',
        'NUL bytes: malformed in a token, refused in a path, rejected by the parser in a raw header',
      ),
      t('test/tokens-api-auth.test.ts', 'a garbage, forged or revoked token is 401 "Unauthorized"'),
    ],
  },
  {
    id: 'T05',
    section: 'A',
    attack: 'Unknown, revoked, expired and malformed tokens compared (answers and timing)',
    answer:
      'Tokens API routes: the same 401 "Unauthorized" for all; the retrieve endpoint and forward-auth name the reason on purpose (see "Deliberate differences"). Timing is measured, not asserted (bench): all within the bound.',
    tests: [
      t(
        'test/forward-auth-answers.test.ts',
        'unknown token and wrong secret: both invalid, with the same answer',
      ),
      t('test/tokens-api-auth.test.ts', 'a garbage, forged or revoked token is 401 "Unauthorized"'),
    ],
    figures: ['T05'],
  },
  {
    id: 'T06',
    section: 'A',
    attack: 'Timing: unknown token vs a live token id with a wrong secret',
    answer:
      'The digest is computed whether or not the id exists and compared with timingSafeEqual on 32-byte digests; other lengths are simply unequal.',
    tests: [
      t('src/core/token-format.test.ts', 'the stored hash compares only to itself'),
      t('src/core/token-status.test.ts', 'a wrong secret for a known id is invalid'),
    ],
    figures: ['T06'],
  },
  {
    id: 'T07',
    section: 'A',
    attack: 'Look for a secret token after its creation: lists, pages, exports, reloads',
    answer: 'Shown once, in the create (or rotate) answer, which is `Cache-Control: no-store`; never again.',
    tests: [
      t('test/secrets-at-rest.test.ts', 'each secret token shows in one answer'),
      t('test/tokens-api-lifecycle.test.ts', 'a secret scope makes an sk whose token string is shown once'),
      t(
        'test/tokens-api-list.test.ts',
        'secret tokens are listed without their token string; public ones with it',
      ),
      t(
        'test/browser/dashboard-security.test.ts',
        'a new secret token appears on exactly one page, and never in the database',
      ),
      t(
        'test/dashboard-audit.test.ts',
        'CSV: an attachment with a header row, one quoted line per event, formulas neutralised, no secret',
      ),
    ],
  },
  {
    id: 'T08',
    section: 'A',
    attack: 'A secret token in `?access_token=`, or in a logged URL',
    answer:
      'Accepted in the query (Mapbox clients send it there). The log rebuilds the URL with `access_token`, `token` and `password` values replaced by [REDACTED], and redacts anything token-shaped anywhere (prefix and base64 JSON payload), also glued to other text or percent-encoded. Referer is never logged.',
    tests: [
      t('test/secrets-at-rest.test.ts', 'SQLite: after the full run no secret token'),
      t('test/operations.test.ts', 'never contain tokens, wherever the request carried them'),
      t('src/logging/logger.test.ts', 'a token is redacted wherever it sits, also glued to other text'),
    ],
  },
  {
    id: 'T09',
    section: 'A',
    attack: 'Two Authorization headers, query and header tokens that differ, access_token twice',
    answer:
      'Forward-auth: two different tokens, or a header sent twice, is 400. Tokens API: a different Bearer and query token is 400; a repeated access_token takes the first, as Mapbox does.',
    tests: [
      t(
        'test/forward-auth-hostile.test.ts',
        'access_token given twice: the same token is fine, two different ones are 400',
      ),
      t('test/forward-auth-hostile.test.ts', 'the same header twice is refused with 400'),
      t(
        'test/tokens-api-auth.test.ts',
        'an Authorization: Bearer header works too; a conflicting second token is 400',
      ),
      t('test/tokens-api-list.test.ts', 'a duplicated access_token is accepted: the first one counts'),
    ],
  },
  {
    id: 'T10',
    section: 'A',
    attack: 'Secrets and an injected `\\n{"level":30}` in logged values',
    answer: 'One JSON object per line (newlines stay escaped); secrets redacted.',
    tests: [
      t('src/logging/logger.test.ts', 'one line per entry: a newline in a value cannot forge a second entry'),
      t('test/fuzz-http.test.ts', 'the log records no unhandled error and no secret'),
    ],
  },
  {
    id: 'T11',
    section: 'A',
    attack: 'Temporary token at and past its expiry; issued in the future',
    answer:
      'Refused from the second of `exp` (no leeway: stricter than the plan); an `iat` over 60 s ahead is invalid.',
    tests: [
      t(
        'test/tokens-api-temporary.test.ts',
        'a tk expires with the clock: TokenExpired, then 401 on the API',
      ),
      t('src/core/token-status.test.ts', 'is invalid when iat lies more than'),
    ],
  },
  {
    id: 'T12',
    section: 'A',
    attack: 'Signing keys: rotation, unknown or hostile kid, edited payload, forged signature',
    answer:
      'One algorithm (HMAC-SHA-256), no JOSE header to choose another; keys only from the data folder or the database; old keys verify for 1 h + 60 s; every forgery is 401.',
    tests: [
      t('src/storage/file-key-ring.test.ts', 'rotate adds the active key while the old one still verifies'),
      t(
        'src/core/token-format.test.ts',
        'verification fails for a changed payload, another key or a truncated signature',
      ),
      t(
        'test/tokens-api-temporary.test.ts',
        'a tk with a forged signature or a lengthened expiry is TokenInvalid',
      ),
      t('test/key-ring.test.ts', 'a temporary token living longer than Tessera ever signs is refused'),
    ],
  },
  // B. Tokens API authorization and validation
  {
    id: 'T13',
    section: 'B',
    attack: 'Tokens API calls without tokens:read / tokens:write, with a pk, with a tk lacking the scope',
    answer: '404 "Not found" (the Mapbox answer for a missing scope) and no change.',
    tests: [
      t(
        'test/tokens-api-auth.test.ts',
        'a token without tokens:read, tokens:write or scopes:list gets 404 "Not found"',
      ),
      t('test/tokens-api-auth.test.ts', 'each scope opens only its own operations'),
    ],
  },
  {
    id: 'T14',
    section: 'B',
    attack: 'Create a token with scopes its creator does not hold',
    answer: '422 "scopes are invalid" (Mapbox); created scopes are always within the creator\'s.',
    tests: [
      t(
        'src/core/token-policy.test.ts',
        'property: succeeds iff the requested scopes are known and held by the authorizer',
      ),
      t('test/tokens-api-auth.test.ts', 'a new token can hold only scopes its creator holds'),
    ],
  },
  {
    id: 'T15',
    section: 'B',
    attack: 'Unknown, upper-case, padded or homoglyph scopes, duplicates, thousands of scopes',
    answer:
      '422 for unknown scopes and for more than 64; duplicates are merged (documented); bodies over 64 KiB 413.',
    tests: [
      t('test/tokens-api-errors.test.ts', 'unknown scopes are 422 "scopes are invalid"'),
      t('src/core/token-policy.test.ts', 'the operator may use every known scope but no unknown one'),
    ],
  },
  {
    id: 'T16',
    section: 'B',
    attack: 'Ask for a public token with a secret scope',
    answer: 'It is created as a secret token (the Mapbox rule); a pk can never gain a secret scope.',
    tests: [
      t('test/tokens-api-lifecycle.test.ts', 'a pk can never gain a secret scope'),
      t('test/sdk-contract.test.ts', 'createToken makes a pk from public scopes and an sk from secret ones'),
    ],
  },
  {
    id: 'T17',
    section: 'B',
    attack: 'Temporary token expiring in the past, beyond 1 h, beyond its parent, with more scopes',
    answer: "422 with Mapbox's messages for each.",
    tests: [
      t(
        'test/tokens-api-temporary.test.ts',
        'expires in the past, now, or more than an hour ahead is refused with Mapbox messages',
      ),
      t('test/tokens-api-temporary.test.ts', 'a tk never outlives an expiring sk that mints it'),
      t(
        'test/tokens-api-temporary.test.ts',
        'scopes beyond the authorizer, unknown scopes and allowedUrls are refused',
      ),
    ],
  },
  {
    id: 'T18',
    section: 'B',
    attack: 'A temporary token with tokens:write tries to make a permanent token or change others',
    answer: '403: a 1-hour leak cannot become a permanent credential.',
    tests: [
      t('test/tokens-api-temporary.test.ts', 'a tk cannot create pk or sk tokens (403)'),
      t(
        'test/tokens-api-lifecycle.test.ts',
        'a temporary token may only delete tokens within its own scopes',
      ),
      t(
        'test/tokens-api-rotation.test.ts',
        'a weaker token cannot rotate a stronger one; a temporary token cannot rotate at all',
      ),
    ],
  },
  {
    id: 'T19',
    section: 'B',
    attack: 'Delete the secret token that minted a temporary token, then use the temporary token',
    answer: '401 at once (a documented difference from Mapbox, where a tk cannot be revoked).',
    tests: [
      t('test/tokens-api-temporary.test.ts', 'a tk dies with the sk that minted it'),
      t('test/forward-auth-revocation.test.ts', 'a tk dies with the token that minted it'),
    ],
  },
  {
    id: 'T20',
    section: 'B',
    attack: "Another account's token on this account's ids, lists, statistics, audit log",
    answer: "404 with the same body as an id that does not exist; the other account's tokens unchanged.",
    tests: [
      t(
        'test/tokens-api-auth.test.ts',
        "one account's token never sees or touches another's tokens: 404 and no change",
      ),
      t('test/usage-api.test.ts', 'accounts are isolated'),
      t('test/dashboard-audit.test.ts', 'another account’s events are not shown'),
    ],
  },
  {
    id: 'T21',
    section: 'B',
    attack: 'Mass assignment: id, usage, token, default, created, modified; pk to sk',
    answer:
      '422 "… cannot be set" for read-only fields; unknown fields ignored (Mapbox); the kind never changes.',
    tests: [
      t('test/tokens-api-errors.test.ts', 'cannot be set'),
      t(
        'test/tokens-api-lifecycle.test.ts',
        'changes what it is given, null clears, modified advances, usage and created stay',
      ),
    ],
  },
  {
    id: 'T22',
    section: 'B',
    attack: '`__proto__`, `constructor`, `prototype` keys',
    answer: '400 at any depth, escaped or not, before any handler sees the body.',
    tests: [
      t('test/tokens-api-errors.test.ts', '__proto__, constructor and prototype keys are refused'),
      t('src/http/strict-json.test.ts', 'refuses prototype-related keys, escaped or not, at any depth'),
    ],
  },
  {
    id: 'T23',
    section: 'B',
    attack: 'Wrong types, null, nested arrays, huge notes, NUL, lone surrogates, HTML in notes',
    answer:
      '422 with the field named; NUL and lone surrogates refused; notes are escaped as text in every page.',
    tests: [
      t(
        'test/tokens-api-errors.test.ts',
        'null scopes or note are refused; null elsewhere is refused on create',
      ),
      t('test/tokens-api-errors.test.ts', 'NUL characters are refused in values and keys'),
      t('test/tokens-api-errors.test.ts', 'lone surrogates are refused rather than stored as something else'),
      t(
        'test/browser/dashboard-security.test.ts',
        'XSS payloads in token names and allowed URLs render as text on every page',
      ),
    ],
  },
  {
    id: 'T24',
    section: 'B',
    attack: 'Bodies as text/plain, form-encoded or without Content-Type',
    answer: '415.',
    tests: [t('test/tokens-api-errors.test.ts', 'content types other than JSON are 415')],
  },
  {
    id: 'T25',
    section: 'B',
    attack: 'Bodies over the limit, deeply nested JSON, huge headers',
    answer: '413 past 64 KiB (also while streaming); 400 past a depth of 32; 431 from Node for headers.',
    tests: [
      t('test/tokens-api-errors.test.ts', 'bodies over 64 KiB are 413, with or without a content-length'),
      t('test/tokens-api-errors.test.ts', 'very deep documents are refused'),
    ],
  },
  {
    id: 'T26',
    section: 'B',
    attack: 'limit=-1, limit=1e9, a foreign or malformed start cursor',
    answer: "422; a cursor only moves within the caller's own list.",
    tests: [
      t('test/tokens-api-list.test.ts', 'limit must be an integer from 1 to 100'),
      t('test/tokens-api-list.test.ts', 'an invalid start is 422 "start is invalid"'),
    ],
  },
  {
    id: 'T27',
    section: 'B',
    attack: 'allowedUrls with javascript:, data:, file:, *, empty, over-long, 101 entries',
    answer:
      '422; at most 100 entries; URLs are only compared, never fetched. Allowed on secret tokens, as at Mapbox.',
    tests: [
      t('test/tokens-api-errors.test.ts', 'allowedUrls contains an invalid URL'),
      t('test/tokens-api-lifecycle.test.ts', 'allowedUrls take up to 100 entries'),
      t('src/core/url-restrictions.test.ts', 'refuses unusable entries'),
    ],
  },
  // C. URL restrictions
  {
    id: 'T28',
    section: 'C',
    attack: 'A restricted public token from its own page',
    answer: '200 with that Origin, or a Referer on that origin (host compared case-insensitively).',
    tests: [
      t(
        'test/forward-auth-url-restrictions.test.ts',
        'is allowed with that Origin, or a Referer on that origin',
      ),
      t('test/nginx.test.ts', 'a URL-restricted token: 403 from another Origin, 200 from its own'),
    ],
  },
  {
    id: 'T29',
    section: 'C',
    attack:
      'Lookalike hosts, userinfo tricks, the allowed URL in the query, sibling subdomains, Origin: null',
    answer:
      '403 for each: URLs are parsed with the WHATWG parser and compared by scheme, host and port, wildcards on a dot boundary. `Origin: null` counts as absent (the Referer then decides).',
    tests: [
      t('test/forward-auth-url-restrictions.test.ts', 'refuses the lookalike'),
      t(
        'test/forward-auth-url-restrictions.test.ts',
        'refuses Origin: null and Origin/Referer values that are not URLs, never with a 5xx',
      ),
      t(
        'src/core/url-restrictions.test.ts',
        'a wildcard entry never matches the apex or a suffix without a dot boundary',
      ),
    ],
  },
  {
    id: 'T30',
    section: 'C',
    attack: 'A restricted token with neither Origin nor Referer',
    answer: '403 (fails closed); an unrestricted token works without them.',
    tests: [
      t(
        'test/forward-auth-url-restrictions.test.ts',
        'is refused (403 url) from any other origin, and with neither header',
      ),
      t(
        'test/forward-auth-url-restrictions.test.ts',
        'an unrestricted pk works with no Origin or Referer, and from anywhere',
      ),
    ],
  },
  {
    id: 'T31',
    section: 'C',
    attack: 'A restriction with a path against an origin-only Referer',
    answer: 'Refused: paths are enforced against the Referer, as at Mapbox (docs/url-restrictions.md).',
    tests: [
      t(
        'src/core/url-restrictions.test.ts',
        'a path prefix allows itself and what lies below it, with a trailing slash only what lies below',
      ),
    ],
  },
  {
    id: 'T32',
    section: 'C',
    attack: '`curl` with a forged Referer',
    answer:
      '200: URL restrictions are not authentication, and the documentation says so (checked by a test).',
    tests: [
      t(
        'test/forward-auth-url-restrictions.test.ts',
        'T32: a forged Referer from a non-browser client is accepted',
      ),
      t('src/core/url-restrictions.test.ts', 'says plainly that URL restrictions are not authentication'),
    ],
  },
  // D. Dashboard authentication and sessions
  {
    id: 'T33',
    section: 'D',
    attack: 'Sign in as an unknown user vs a known user with a wrong password',
    answer:
      'The same status, bytes and cookies. (Sign-up says when a username is taken: usernames are public.)',
    tests: [
      t(
        'test/dashboard-throttling.test.ts',
        'same status, same bytes once the per-browser form token is removed, same cookies',
      ),
      t('src/services/session-service.test.ts', 'a wrong password and an unknown username are refused alike'),
    ],
  },
  {
    id: 'T34',
    section: 'D',
    attack: 'Timing of the two cases above',
    answer:
      'An unknown user is checked against a decoy Argon2id hash, so both cost one hash. Measured by a benchmark.',
    tests: [
      t('src/services/session-service.test.ts', 'a wrong password and an unknown username are refused alike'),
    ],
    figures: ['T34'],
  },
  {
    id: 'T35',
    section: 'D',
    attack: '10 wrong passwords for one account, then the right one',
    answer:
      '5 failures evaluated freely in 15 minutes, then 429 + Retry-After from 1 s doubling to 15 minutes; the right password waits for the lock.',
    tests: [
      t('test/brute-force.test.ts', 'one account: at most 5 Argon2 checks run'),
      t(
        'test/dashboard-throttling.test.ts',
        'failures 1-5 answer 401, then 429 with Retry-After; the right password waits for the lock',
      ),
      t(
        'src/services/login-throttle.test.ts',
        'each failure after the lock doubles it, capped at 15 minutes',
      ),
    ],
    figures: ['T35'],
  },
  {
    id: 'T36',
    section: 'D',
    attack: 'The same attack rotating 100 X-Forwarded-For / X-Real-IP values',
    answer: 'No bypass: forwarded headers are ignored unless TESSERA_TRUSTED_PROXIES names the proxy.',
    tests: [
      t(
        'test/brute-force.test.ts',
        'no trusted proxy, 100 concurrent guesses for one account with 100 forged addresses: 0 bypasses',
      ),
      t(
        'test/brute-force.test.ts',
        'no trusted proxy, 100 concurrent guesses across 100 usernames: the per-address budget of 50 holds',
      ),
      t(
        'test/brute-force.test.ts',
        'behind a trusted proxy, 100 real client addresses guessing one account share its lock',
      ),
      t(
        'test/dashboard-throttling.test.ts',
        'without trusted proxies, 100 rotated X-Forwarded-For / X-Real-IP values change nothing',
      ),
      t(
        'src/core/client-address.test.ts',
        'rotating X-Forwarded-For values never changes the key without trust',
      ),
    ],
    figures: ['T36'],
  },
  {
    id: 'T37',
    section: 'D',
    attack: '100 concurrent wrong passwords for one account',
    answer:
      'Attempts in flight count: at most 5 real Argon2 checks run (counted), the rest 429 with Retry-After',
    tests: [
      t(
        'test/brute-force.test.ts',
        'one account: at most 5 Argon2 checks run, the rest 429 with Retry-After; the counter equals the checks',
      ),
      t(
        'test/dashboard-throttling.test.ts',
        '100 concurrent wrong passwords for one account: at most 5 are checked, the rest 429',
      ),
      t('src/services/login-throttle.test.ts', '100 concurrent attempts run exactly 5 checks'),
    ],
    figures: ['T37'],
  },
  {
    id: 'T38',
    section: 'D',
    attack: "An attacker locks a victim's account from another address",
    answer:
      'The lock is per account and never lasts beyond 15 minutes after the last guess; it is logged; sessions are untouched.',
    tests: [
      t(
        'test/dashboard-throttling.test.ts',
        'documented: the lock applies from every address, and the victim gets in once it ends',
      ),
    ],
  },
  {
    id: 'T39',
    section: 'D',
    attack: 'Session fixation: sign in carrying a planted cookie',
    answer: 'A new session id at sign-in; the planted value grants nothing.',
    tests: [
      t(
        'test/dashboard-sessions.test.ts',
        'the cookie after sign-in is new; a planted session value gives nothing',
      ),
      t('test/dashboard-prefix.test.ts', 'two session cookies in one request open nothing'),
    ],
  },
  {
    id: 'T40',
    section: 'D',
    attack: 'Every Set-Cookie; 1,000 session ids',
    answer:
      'HttpOnly, SameSite=Lax, Path=/, no Domain; with an https public URL also Secure and `__Host-`. Ids are 256-bit and distinct.',
    tests: [
      t(
        'test/dashboard-sessions.test.ts',
        'HttpOnly, SameSite=Lax, Path=/, no Domain on every Set-Cookie over http',
      ),
      t(
        'test/dashboard-sessions.test.ts',
        'behind an https public URL: __Host- names and Secure on every Set-Cookie',
      ),
      t('src/services/session-service.test.ts', '1,000 session ids are distinct 256-bit base64url strings'),
    ],
  },
  {
    id: 'T41',
    section: 'D',
    attack: 'Replay a cookie after sign-out, after 30 minutes idle, after 12 hours',
    answer: 'Ended on the server each time.',
    tests: [
      t(
        'test/dashboard-sessions.test.ts',
        'sign-out answers 303 to /signin and the cookie stops working on the server',
      ),
      t(
        'test/dashboard-sessions.test.ts',
        'idle for 30 minutes and 1 second: the next request goes to sign-in',
      ),
      t('test/dashboard-sessions.test.ts', '12 hours and 1 second after sign-in the session ends'),
    ],
  },
  {
    id: 'T42',
    section: 'D',
    attack: 'Change the password in one session, use another',
    answer: 'Every other session ends in the same transaction.',
    tests: [
      t(
        'test/dashboard-sessions.test.ts',
        'ends the other sessions and keeps the current one under a new id',
      ),
    ],
  },
  {
    id: 'T43',
    section: 'D',
    attack: 'Cross-site requests: no, wrong or foreign form token, hostile Origin, Sec-Fetch-Site cross-site',
    answer: '403 and no change, for every form that changes something.',
    tests: [
      t('test/dashboard-csrf.test.ts', 'every forged variant is refused and changes nothing'),
      t('test/dashboard-csrf.test.ts', 'is refused as cross-site (403), not sent to sign in, on every form'),
    ],
  },
  {
    id: 'T44',
    section: 'D',
    attack: 'Login CSRF; a form token from before sign-in used after it',
    answer: 'Both refused.',
    tests: [
      t('test/dashboard-csrf.test.ts', 'a cross-site sign-in post is refused and starts no session'),
      t(
        'test/browser/dashboard-security.test.ts',
        'login CSRF cannot sign a signed-out browser into the attacker account',
      ),
    ],
  },
  {
    id: 'T45',
    section: 'D',
    attack: 'Create, delete or rotate without, or with an expired, password confirmation',
    answer:
      "403 with the password form; a confirmation lasts 5 minutes; another account's password is wrong.",
    tests: [
      t('test/dashboard-csrf.test.ts', 'without a confirmation answer 403 with the password form'),
      t('test/dashboard-csrf.test.ts', 'a confirmation lasts 5 minutes'),
      t('test/dashboard-csrf.test.ts', 'another account’s password is a wrong password'),
    ],
  },
  {
    id: 'T46',
    section: 'D',
    attack: '5 wrong confirmations, through every path that confirms',
    answer: 'One counter for all paths; the 5th ends the session; logged.',
    tests: [
      t(
        'test/brute-force.test.ts',
        '100 concurrent wrong confirmations: at most 5 checks, the session ends once, nothing changes',
      ),
      t(
        'test/brute-force.test.ts',
        'every path that confirms a password feeds one counter, and each ends the session at the 5th',
      ),
      t(
        'test/brute-force.test.ts',
        'the Tokens API does not take the dashboard session: no other path confirms or acts',
      ),
      t(
        'test/dashboard-csrf.test.ts',
        'one counter across create, update, delete, refresh and password change; the 5th ends the session',
      ),
      t('src/services/session-service.test.ts', 'a burst of concurrent guesses cannot outrun the limit'),
    ],
    figures: ['T46'],
  },
  {
    id: 'T47',
    section: 'D',
    attack: 'Off-site `next=` after sign-in, in every spelling',
    answer: 'Only same-origin /account paths; anything else lands on /account.',
    tests: [
      t(
        'test/dashboard-csrf.test.ts',
        'a hostile next after signing in always lands on a same-origin /account path',
      ),
    ],
  },
  {
    id: 'T48',
    section: 'D',
    attack: 'Crawl every page and read the headers',
    answer:
      'CSP with frame-ancestors none, X-Frame-Options DENY, nosniff, Referrer-Policy, COOP, no-store; no version banner.',
    tests: [
      t(
        'test/dashboard-headers.test.ts',
        'a crawl of the signed-in dashboard: every HTML answer carries the headers',
      ),
      t('test/dashboard-headers.test.ts', 'the anonymous pages and every kind of error page carry them too'),
    ],
  },
  {
    id: 'T49',
    section: 'D',
    attack: 'Script in notes and allowed URLs, rendered in Chromium',
    answer: 'No script runs; the text is shown as written.',
    tests: [
      t(
        'test/browser/dashboard-security.test.ts',
        'XSS payloads in token names and allowed URLs render as text on every page',
      ),
    ],
  },
  {
    id: 'T50',
    section: 'D',
    attack: 'CORS preflights and credentialed requests from a hostile origin',
    answer:
      'The dashboard never answers with Access-Control-Allow-Origin; the token APIs allow `*` without credentials.',
    tests: [
      t('test/dashboard-headers.test.ts', 'never gets Access-Control-Allow-Origin from the dashboard'),
      t('test/dashboard-headers.test.ts', 'the Tokens API keeps * and never allows credentials'),
    ],
  },
  {
    id: 'T51',
    section: 'D',
    attack: 'Force errors: invalid JSON, bad encodings, a database that is gone',
    answer:
      'A plain message and (APIs and dashboard) an `X-Request-Id` that names the log line; never a stack trace, SQL, a path or a version; 503 with Retry-After when the database is gone.',
    tests: [
      t('test/operations.test.ts', 'every answer carries an X-Request-Id that names its log line'),
      t('test/tokens-api-errors.test.ts', 'malformed JSON, an empty body and invalid UTF-8 are 400'),
      t('test/dashboard-headers.test.ts', 'with a clear message, no internals, no change'),
      t('test/operations.test.ts', '/readyz answers 503 with Retry-After once the store is gone'),
    ],
  },
  {
    id: 'T52',
    section: 'D',
    attack: 'TRACE, TRACK, PROPFIND and other methods; HEAD on routes that change things',
    answer: '404/405 and no change (Node refuses TRACK itself with 400).',
    tests: [
      t(
        'test/dashboard-headers.test.ts',
        'TRACE, TRACK, PROPFIND, PUT, DELETE, PATCH on dashboard routes: 404/405, no change',
      ),
      t('test/dashboard-headers.test.ts', 'HEAD on POST-only routes does nothing'),
    ],
  },
  // E. Concurrency
  {
    id: 'T53',
    section: 'E',
    attack: 'Concurrent deletes of one token',
    answer: 'Exactly one 204, the rest 404; one audit event.',
    tests: [
      t('test/concurrency.test.ts', '50 concurrent DELETEs of one token'),
      t(
        'test/operations.test.ts',
        'ten concurrent deletes of the default token: one 204, nine 404, exactly one new default',
      ),
    ],
    figures: ['T53'],
  },
  {
    id: 'T54',
    section: 'E',
    attack: 'Concurrent updates of one token',
    answer: 'Updates are serialised per token with a version check: none lost, none mixed.',
    tests: [
      t('test/concurrency.test.ts', 'concurrent PATCHes of note and scopes'),
      t('test/operations.test.ts', 'twenty concurrent updates of one token all land, none lost'),
    ],
    figures: ['T54'],
  },
  {
    id: 'T55',
    section: 'E',
    attack: 'Concurrent creates against a quota',
    answer:
      'An account holds at most `limits.tokensPerAccount` live tokens (10,000 by default), counted inside the insert transaction under a lock on the account: 50 concurrent creates with room for 5 give exactly 5, the rest 422, on SQLite and PostgreSQL (the per-account Tokens API request limit holds the same way)',
    tests: [
      t('test/concurrency.test.ts', '50 concurrent creates with room for 5'),
      t('test/concurrency.test.ts', '50 concurrent creates with 5 requests left'),
      t('test/store.test.ts', 'concurrent inserts against the account limit: exactly the room left is taken'),
    ],
    figures: ['T55', 'T55-requests'],
  },
  {
    id: 'T56',
    section: 'E',
    attack: 'Verifications in flight while the token is deleted',
    answer: 'Every verification that starts after the 204 is refused (single node: 0 ms).',
    tests: [
      t(
        'test/forward-auth-revocation.test.ts',
        'DELETE while verifications are in flight: every one started after the answer is refused',
      ),
    ],
  },
  {
    id: 'T57',
    section: 'E',
    attack: 'Random command sequences and interleavings against a model',
    answer:
      'Create, update, delete, rotate with a grace period, temporary tokens, list, verify and time passing, on SQLite and PostgreSQL, against a model that predicts every status and body; scheduled interleavings must match a serial order that respects real time. No divergence',
    tests: [
      t('test/model-lifecycle.test.ts', 'random sequences of up to'),
      t('test/model-lifecycle.test.ts', 'scheduled interleavings of concurrent changes are linearizable'),
    ],
    figures: ['T57'],
  },
  {
    id: 'T58',
    section: 'E',
    attack: 'Delete a secret token while it mints a temporary token',
    answer:
      'No temporary token minted from a deleted parent ever works, whenever the mint answered; a create or rotation re-checks its authorising token inside its own transaction (fixed: a create racing the revocation of its authoriser could commit a permanent token after the delete); a rotation racing a delete answers 200 or 404, never 409 (fixed)',
    tests: [
      t('test/concurrency.test.ts', 'creates racing the revocation of the token that authorises them'),
      t(
        'test/store.test.ts',
        'insertToken re-checks its authoriser and the account limit in its own transaction',
      ),
      t('test/concurrency.test.ts', 'an sk deleted while it mints tks'),
      t('test/concurrency.test.ts', 'a rotation racing a delete of its token answers 200 or 404, never 409'),
      t('src/core/token-status.test.ts', 'is revoked when the parent is deleted'),
    ],
    figures: ['T58', 'T58-creates'],
  },
  // F. Durability and faults
  {
    id: 'T59',
    section: 'F',
    attack: '`kill -9` during concurrent creates (SQLite, PostgreSQL)',
    answer: 'Every acknowledged create survives; integrity checks pass (SQLite WAL, synchronous=FULL).',
    tests: [
      t(
        'test/crash-durability.test.ts',
        'on SQLite, every acknowledged write survives and the file is intact',
      ),
      t('test/crash-durability.test.ts', 'every acknowledged write survives and no row is half-written'),
    ],
    figures: ['T59'],
  },
  {
    id: 'T60',
    section: 'F',
    attack: '`kill -9` during concurrent deletes',
    answer: 'Every acknowledged delete stays revoked.',
    tests: [
      t(
        'test/crash-durability.test.ts',
        'on SQLite, every acknowledged write survives and the file is intact',
      ),
    ],
    figures: ['T60'],
  },
  {
    id: 'T61',
    section: 'F',
    attack: 'PostgreSQL stopped, hung and restarted under load',
    answer:
      '503 + Retry-After meanwhile, never 500; a frozen server is given up on after 3 s on an open connection, 5 s for a new one, and that connection closed (fixed: requests used to wait as long as it was frozen); recovery without restarting Tessera; no acknowledged write lost',
    tests: [
      t('test/dependency-faults.test.ts', 'T61 PostgreSQL stopped under load'),
      t('test/dependency-faults.test.ts', 'T61 PostgreSQL hung (SIGSTOP) under load'),
      t(
        'test/postgres-faults.test.ts',
        'PostgreSQL cut off: recently verified tokens pass, the rest and all writes answer 503',
      ),
    ],
    figures: ['T61'],
  },
  {
    id: 'T62',
    section: 'F',
    attack: 'Start Tessera while PostgreSQL is down',
    answer:
      'It listens at once (fixed: it used to bind only once the database answered): /healthz 200, /readyz and every request 503 + Retry-After, while it waits with backoff; it serves once PostgreSQL is up',
    tests: [
      t('test/dependency-faults.test.ts', 'T62 tessera serve started while PostgreSQL is down'),
      t('test/postgres-startup.test.ts', 'a node started before PostgreSQL waits for it, then works'),
    ],
    figures: ['T62'],
  },
  {
    id: 'T63',
    section: 'F',
    attack: 'Redis killed under load',
    answer: 'Verification never uses Redis; rate limits fall back to per-node counting, never unlimited.',
    tests: [
      t('test/dependency-faults.test.ts', 'T63 Redis killed under load, then restarted'),
      t(
        'src/services/redis-rate-limiter.test.ts',
        'Redis unreachable: hit answers at once and counts per node, never unlimited',
      ),
    ],
    figures: ['T63'],
  },
  {
    id: 'T64',
    section: 'F',
    attack: 'Redis hung (SIGSTOP)',
    answer: 'No request waits on Redis (200 ms command timeout, off the request path).',
    tests: [
      t('test/dependency-faults.test.ts', 'T64 Redis hung (SIGSTOP) under load, then SIGCONT'),
      t('src/services/redis-rate-limiter.test.ts', 'a Redis that stops answering never delays hit'),
    ],
    figures: ['T64'],
  },
  {
    id: 'T65',
    section: 'F',
    attack: 'Redis restored from a snapshot taken before a revocation',
    answer: 'Nothing to resurrect: Redis holds only hashed rate-limit counters, never a verdict.',
    tests: [
      t('test/dependency-faults.test.ts', 'T65 Redis restarted from a dump.rdb taken before a revocation'),
    ],
    figures: ['T65'],
  },
  {
    id: 'T66',
    section: 'F',
    attack: 'Database down with a warm cache',
    answer: 'A token verified in the last 5 s still passes; anything else 503, never 200.',
    tests: [
      t(
        'test/postgres-faults.test.ts',
        'PostgreSQL cut off: recently verified tokens pass, the rest and all writes answer 503',
      ),
    ],
  },
  {
    id: 'T67',
    section: 'F',
    attack: 'Delete through node A, verify on node B',
    answer:
      'PostgreSQL LISTEN/NOTIFY plus a 200 ms change-log poll. A node that loses the feed, or has not read the change log for 2 s (fixed: a feed that only looked connected kept the cache trusted for up to 60 s), answers from the database, not from memory',
    tests: [
      t(
        'src/services/change-follower.test.ts',
        'a change log that hangs suspends the cache once the last good read is older than staleAfterMs',
      ),
      t(
        'src/services/change-follower.test.ts',
        'a change log that cannot be read suspends the cache even while the push feed looks connected',
      ),
      t(
        'test/multi-node.test.ts',
        'a token deleted through node A is refused by nodes B and C, and stays refused',
      ),
      t(
        'test/postgres.test.ts',
        'a node whose change feed drops serves nothing from memory until it is back',
      ),
    ],
    figures: ['T67'],
  },
  {
    id: 'T68',
    section: 'F',
    attack: 'Two nodes with clocks 90 s apart, a temporary token near expiry',
    answer:
      'No node accepts a token (tk, pk or sk) at or after its expiry by its own clock; the node that is ahead refuses 90 s early (fails closed), and in the test, where A keeps the true time, nothing is accepted late by the true clock either (a node whose clock is behind would accept late by as much). A tk minted on the fast node is refused by the others as issued in the future until their clock reaches its `iat` minus 60 s. Each node measures its clock against the database at start and every 5 s: more than 5 s is logged and exported (`tessera_clock_skew_seconds`). Run NTP.',
    tests: [
      t('test/clock-skew.test.ts', 'each node measures its clock against the database at start'),
      t('test/clock-skew.test.ts', 'neither node accepts it at or after exp by its own clock'),
      t('test/clock-skew.test.ts', 'A refuses it as issued in the future for 30 s'),
      t('test/clock-skew.test.ts', 'neither node accepts them at or after expiresAt by its own clock'),
      t('test/clock-skew.test.ts', 'logs "this machine clock differs from the database clock" at start'),
      t('test/key-ring.test.ts', 'a clock that drifts after the start is measured again at each refresh'),
      t('test/key-ring.test.ts', 'rotation times come from the database clock'),
    ],
    figures: ['T68'],
  },
  {
    id: 'T69',
    section: 'F',
    attack: 'SQLite on a full or read-only disk',
    answer:
      'Writes answer 503 with Retry-After and change nothing (fixed: SQLite rolls back by itself on a full disk, and the ROLLBACK that followed replaced the error with a 500); reads go on; writes resume once space returns; integrity_check ok',
    tests: [
      t('test/disk-full.test.ts', 'T69 SQLite on a full file system'),
      t('src/storage/database.test.ts', 'SQLITE_FULL'),
    ],
    figures: ['T69'],
  },
  // G. Load and abuse
  {
    id: 'T70',
    section: 'G',
    attack: 'A flood of wrong-password sign-ins while tokens are verified',
    answer:
      'At most 4 Argon2 checks run per process and 64 wait, beyond that 503 + Retry-After at once. But the dashboard and forward-auth share one event loop: a flood of any HTTP requests at the dashboard (even without password work) raises verification p99 to seconds on a 2-core machine. Route `/auth/verify` to nodes that serve no dashboard if sign-in floods are a concern (they share the database)',
    tests: [
      t('bench/signin-flood.ts', 'sign-in'),
      t('src/services/passwords.test.ts', 'the rest are refused with 503 at once'),
    ],
    figures: ['T70'],
  },
  {
    id: 'T71',
    section: 'G',
    attack: 'A 1 MB password at sign-in and confirmation',
    answer:
      '413 before any hash and not counted as a guess (forms are capped at 32 KiB; passwords of 129 characters up to that cap are checked, which costs the same Argon2 work)',
    tests: [
      t(
        'test/brute-force.test.ts',
        'at sign-in and at confirmation: 413 before any hash, and not counted as a guess',
      ),
      t('test/dashboard-headers.test.ts', 'more than 32 KiB'),
    ],
    figures: ['T71'],
  },
  {
    id: 'T72',
    section: 'G',
    attack: 'Floods of random well-formed-looking tokens',
    answer:
      'A bad checksum is refused without a store call. A token with a valid checksum (anyone can compute CRC-32) costs one indexed lookup; invalid tokens are not throttled per client (rate-limit unauthenticated traffic at the gateway)',
    tests: [
      t('test/garbage-without-store.test.ts', '2,500 random well-formed tokens with a bad checksum'),
      t('test/garbage-without-store.test.ts', 'refused without one store lookup'),
    ],
    figures: ['T72'],
  },
  {
    id: 'T73',
    section: 'G',
    attack:
      "Usage statistics: 10,000 verifications across 10 tokens from 50 clients, again with a kill -9 mid-run; another account's statistics",
    answer:
      "Counts add up exactly (a SIGTERM stop writes every count, also when it lands during a timer's write: fixed, a stop during a write dropped what was counted after that write took its batch); a kill -9 loses at most one flush interval plus the write under way; another account's statistics answer 404; statistics never hold a token.",
    tests: [
      t(
        'test/usage-crash.test.ts',
        'on SQLite, a clean run counts exactly and a crash loses at most one flush interval',
      ),
      t(
        'test/usage-crash.test.ts',
        'a clean run counts exactly and a crash loses at most one flush interval',
      ),
      t(
        'test/usage-recorder.test.ts',
        'a flush asked for while another is writing writes what was counted meanwhile',
      ),
      t(
        'test/forward-auth-usage.test.ts',
        'allowed and refused decisions add up exactly per service and outcome',
      ),
      t('test/usage-api.test.ts', 'accounts are isolated'),
    ],
    figures: ['T73'],
  },
  // H. Fuzz
  {
    id: 'T74',
    section: 'H',
    attack: 'Seeded fast-check requests over every route: methods, paths, headers, JSON and form bodies',
    answer:
      'No 5xx, no stack trace or internal path, no secret echoed, refusals are JSON `{"message"}`, healthy after.',
    tests: [
      t('test/fuzz-http.test.ts', 'hostile requests, no 5xx, no stack trace, no secret echoed'),
      t('test/fuzz-http.test.ts', 'the campaign reached the handlers, not only the front door'),
      t('test/forward-auth-hostile.test.ts', 'never a 5xx, and every refusal carries a JSON message'),
      t(
        'test/tokens-api-errors.test.ts',
        'property: random bodies never make the server fail, and refusals change nothing',
      ),
    ],
    figures: ['T74'],
  },
];
