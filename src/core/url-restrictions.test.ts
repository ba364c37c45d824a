import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_ALLOWED_URLS } from './token-policy.ts';
import {
  type AllowedUrl,
  isAllowedSource,
  MAX_ALLOWED_URL_LENGTH,
  parseAllowedUrl,
  type RequestSource,
} from './url-restrictions.ts';

function allows(entry: string, source: RequestSource): boolean {
  const parsed = parseAllowedUrl(entry);
  assert.ok(parsed, `${entry} parses`);
  return isAllowedSource([parsed], source);
}

/** [entry, source, expected]: the source is a Referer unless it is given as an object. */
const TABLE: ReadonlyArray<readonly [string, string | RequestSource, boolean]> = [
  ['https://app.example.com', 'https://app.example.com/', true],
  ['https://app.example.com', 'https://app.example.com/any/page?x=1#y', true],
  ['https://app.example.com', 'https://APP.Example.COM/', true],
  ['HTTPS://APP.EXAMPLE.COM', 'https://app.example.com/', true],
  ['https://app.example.com', 'https://app.example.com./', true],
  ['https://app.example.com', 'https://other.example.com/', false],
  ['https://app.example.com', 'https://sub.app.example.com/', false],
  ['https://app.example.com', 'https://example.com/', false],
  // Scheme pinning: an entry with a scheme allows only that scheme; without one, http and https.
  ['https://app.example.com', 'http://app.example.com/', false],
  ['app.example.com', 'http://app.example.com/', true],
  ['app.example.com', 'https://app.example.com/', true],
  ['app.example.com', 'ftp://app.example.com/', false],
  // `*.` allows every subdomain, never the apex nor a mere suffix.
  ['*.example.com', 'https://a.example.com/', true],
  ['*.example.com', 'https://a.b.example.com/', true],
  ['*.example.com', 'https://example.com/', false],
  ['*.example.com', 'https://evilexample.com/', false],
  ['*.example.com', 'https://example.com.evil.com/', false],
  ['https://*.example.com', 'http://a.example.com/', false],
  // Ports: any port unless the entry names one; a named default port counts as named.
  ['https://app.example.com', 'https://app.example.com:8443/', true],
  ['https://app.example.com:8443', 'https://app.example.com:8443/', true],
  ['https://app.example.com:8443', 'https://app.example.com/', false],
  ['app.example.com:8080', 'http://app.example.com:8080/', true],
  ['app.example.com:8080', 'http://app.example.com:8081/', false],
  ['https://app.example.com:443', 'https://app.example.com/', true],
  ['https://app.example.com:443', 'https://app.example.com:8443/', false],
  ['app.example.com:443', 'http://app.example.com/', false],
  ['app.example.com:80', 'http://app.example.com/', true],
  ['app.example.com:80', 'https://app.example.com/', false],
  ['http://localhost:3000', 'http://localhost:3000/', true],
  ['http://localhost:3000', 'http://localhost:3001/', false],
  // Path prefixes: `/maps` is the page and below, `/maps/` only below.
  ['https://app.example.com/maps', 'https://app.example.com/maps', true],
  ['https://app.example.com/maps', 'https://app.example.com/maps/world', true],
  ['https://app.example.com/maps', 'https://app.example.com/mapsx', false],
  ['https://app.example.com/maps', 'https://app.example.com/', false],
  ['https://app.example.com/maps', 'https://app.example.com/other/maps', false],
  ['https://app.example.com/maps/', 'https://app.example.com/maps/world', true],
  ['https://app.example.com/maps/', 'https://app.example.com/maps', false],
  ['https://app.example.com/maps', 'https://app.example.com/maps/../admin', false],
  // Lookalikes and userinfo in the source.
  ['https://app.example.com', 'https://app.example.com@evil.com/', false],
  ['https://app.example.com', 'https://app.example.com.evil.com/', false],
  ['https://app.example.com', 'https://evil.com/app.example.com', false],
  ['https://app.example.com', 'https://evil.com/?u=https://app.example.com', false],
  ['https://app.example.com', 'https://app-example.com/', false],
  // Origin and Referer.
  ['https://app.example.com', { origin: 'https://app.example.com' }, true],
  ['https://app.example.com', { origin: 'https://evil.com', referer: 'https://app.example.com/' }, false],
  ['https://app.example.com', { origin: 'null' }, false],
  ['https://app.example.com', { origin: 'null', referer: 'https://evil.com/' }, false],
  // `Origin: null` carries nothing: it is treated like a missing Origin, so the Referer decides.
  ['https://app.example.com', { origin: 'null', referer: 'https://app.example.com/' }, true],
  ['https://app.example.com', { referer: 'https://app.example.com/page' }, true],
  [
    'https://app.example.com',
    { origin: 'https://app.example.com', referer: 'https://app.example.com/x' },
    true,
  ],
  ['https://app.example.com/maps', { origin: 'https://app.example.com' }, false],
  [
    'https://app.example.com/maps',
    { origin: 'https://app.example.com', referer: 'https://app.example.com/maps' },
    true,
  ],
  [
    'https://app.example.com',
    { origin: 'chrome-extension://abc', referer: 'https://app.example.com/' },
    false,
  ],
  ['https://app.example.com', { origin: 'garbage', referer: 'garbage' }, false],
  ['https://app.example.com', {}, false],
  ['https://app.example.com', { origin: '', referer: '' }, false],
];

describe('isAllowedSource', () => {
  for (const [entry, source, expected] of TABLE) {
    const request = typeof source === 'string' ? { referer: source } : source;
    test(`${entry} ${expected ? 'allows' : 'refuses'} ${JSON.stringify(request)}`, () => {
      assert.equal(allows(entry, request), expected);
    });
  }

  test('no entries allow nothing, several entries allow any of them', () => {
    const entries = ['https://a.example.com', '*.b.example.com'].map(
      (entry) => parseAllowedUrl(entry) as AllowedUrl,
    );
    assert.equal(isAllowedSource([], { referer: 'https://a.example.com/' }), false);
    assert.equal(isAllowedSource(entries, { referer: 'https://x.b.example.com/' }), true);
    assert.equal(isAllowedSource(entries, { referer: 'https://c.example.com/' }), false);
  });
});

const label = fc
  .stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/)
  .filter((text) => !text.startsWith('xn--'));
const host = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-z]{2,6}$/))
  .map(([labels, tld]) => [...labels, tld].join('.'));
const randomCase = (text: string): fc.Arbitrary<string> =>
  fc
    .array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((upper) => [...text].map((char, index) => (upper[index] ? char.toUpperCase() : char)).join(''));
/** An entry host, that host in random case, and a source host: the same one in random case, or another. */
const hostPair = host.chain((entryHost) =>
  fc.tuple(
    fc.constant(entryHost),
    randomCase(entryHost),
    fc.oneof(randomCase(entryHost), host.chain(randomCase)),
  ),
);

describe('url restriction properties', () => {
  test('a plain entry matches a source iff the hostnames are equal ignoring case', () => {
    fc.assert(
      fc.property(
        hostPair,
        fc.constantFrom('', 'https://'),
        ([entryHost, entryCased, sourceHost], scheme) => {
          const entry = parseAllowedUrl(`${scheme}${entryCased}`);
          assert.ok(entry);
          const expected = entryHost === sourceHost.toLowerCase();
          assert.equal(isAllowedSource([entry], { referer: `https://${sourceHost}/page` }), expected);
          assert.equal(isAllowedSource([entry], { origin: `https://${sourceHost}` }), expected);
        },
      ),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('a wildcard entry never matches the apex or a suffix without a dot boundary', () => {
    fc.assert(
      fc.property(host, label, (apex, prefix) => {
        const entry = parseAllowedUrl(`*.${apex}`);
        assert.ok(entry);
        assert.equal(isAllowedSource([entry], { referer: `https://${apex}/` }), false);
        assert.equal(isAllowedSource([entry], { referer: `https://${prefix}${apex}/` }), false);
        assert.equal(isAllowedSource([entry], { referer: `https://${prefix}-${apex}/` }), false);
        assert.equal(isAllowedSource([entry], { referer: `https://${apex}.${prefix}.com/` }), false);
        assert.equal(isAllowedSource([entry], { referer: `https://${prefix}.${apex}/` }), true);
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('parseAllowedUrl never throws on arbitrary strings', () => {
    for (const unit of ['grapheme-ascii', 'binary'] as const) {
      fc.assert(
        fc.property(fc.string({ unit, maxLength: 3000 }), (text) => {
          const entry = parseAllowedUrl(text);
          if (entry) assert.ok(!entry.host.includes('*') && entry.host.length > 0);
        }),
        { seed: 42, numRuns: 1000 },
      );
    }
  });

  test('isAllowedSource never throws on arbitrary headers', () => {
    const entries = ['https://app.example.com/maps', '*.example.com'].map(
      (entry) => parseAllowedUrl(entry) as AllowedUrl,
    );
    fc.assert(
      fc.property(fc.option(fc.string()), fc.option(fc.webUrl()), (origin, referer) => {
        const result = isAllowedSource(entries, {
          origin: origin ?? undefined,
          referer: referer ?? undefined,
        });
        assert.equal(typeof result, 'boolean');
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('parseAllowedUrl', () => {
  test('refuses unusable entries', () => {
    const refused = [
      '',
      '*',
      '*.',
      '*.com',
      'https://*',
      'https://*.*.example.com',
      'https://a*.example.com',
      'javascript:alert(1)',
      'javascript://example.com/%0aalert(1)',
      'data:text/html,<script>1</script>',
      'file:///etc/passwd',
      'ftp://example.com',
      'https://user:pass@example.com',
      'https://app.example.com@evil.com',
      'https://exa mple.com',
      'https://example.com\\@evil.com',
      'com',
      `https://example.com/${'a'.repeat(MAX_ALLOWED_URL_LENGTH)}`,
    ];
    for (const entry of refused) assert.equal(parseAllowedUrl(entry), undefined, entry);
  });

  test('accepts the documented forms', () => {
    assert.deepEqual(parseAllowedUrl('https://docs.mapbox.com'), {
      scheme: 'https:',
      host: 'docs.mapbox.com',
      subdomains: false,
    });
    assert.deepEqual(parseAllowedUrl('*.Example.com:8080/maps/'), {
      host: 'example.com',
      subdomains: true,
      port: '8080',
      pathPrefix: '/maps/',
    });
    const longest = `https://example.com/${'a'.repeat(MAX_ALLOWED_URL_LENGTH - 'https://example.com/'.length)}`;
    assert.equal(longest.length, MAX_ALLOWED_URL_LENGTH);
    assert.ok(parseAllowedUrl(longest));
  });
});

// docs/url-restrictions.md is the user's reference: its example tables are executed here, so the
// page and the code cannot drift apart.
const DOC = readFileSync(new URL('../../docs/url-restrictions.md', import.meta.url), 'utf8');

/** The body rows of the markdown table whose header row has exactly these cells. */
function markdownTable(markdown: string, header: readonly string[]): string[][] {
  const lines = markdown.split('\n');
  const split = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim());
  const start = lines.findIndex(
    (line) => line.startsWith('|') && JSON.stringify(split(line)) === JSON.stringify(header),
  );
  assert.ok(start >= 0, `docs/url-restrictions.md has a table headed ${header.join(' | ')}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = split(line);
    assert.equal(cells.length, header.length, `table row has ${header.length} cells: ${line}`);
    rows.push(cells);
  }
  return rows;
}

/** A table cell as a value: `code` unwrapped, `—` for an absent header, `(empty)` for ''. */
function cellValue(cell: string): string | undefined {
  if (cell === '—') return undefined;
  if (cell === '(empty)') return '';
  const code = /^`(.*)`$/.exec(cell);
  assert.ok(code, `cell is a code span, — or (empty): ${cell}`);
  return code[1];
}

describe('docs/url-restrictions.md', () => {
  const examples = markdownTable(DOC, ['entry', 'Origin', 'Referer', 'allowed', 'why']);
  test('has the examples table', () => {
    assert.ok(examples.length >= 40, `${examples.length} examples`);
  });
  for (const [entryCell = '', originCell = '', refererCell = '', allowedCell = '', why = ''] of examples) {
    const entry = cellValue(entryCell) ?? '';
    const origin = cellValue(originCell);
    const referer = cellValue(refererCell);
    assert.ok(allowedCell === 'yes' || allowedCell === 'no', `allowed is yes or no: ${allowedCell}`);
    const expected = allowedCell === 'yes';
    test(`${entry} ${expected ? 'allows' : 'refuses'} Origin ${origin ?? '—'}, Referer ${referer ?? '—'} (${why})`, () => {
      const parsed = parseAllowedUrl(entry);
      assert.ok(parsed, `${entry} is a valid entry`);
      assert.equal(isAllowedSource([parsed], { origin, referer }), expected);
    });
  }

  const refused = markdownTable(DOC, ['refused entry', 'why']);
  test('every refused entry of the table is refused', () => {
    assert.ok(refused.length >= 15, `${refused.length} refused entries`);
    for (const [cell = '', why] of refused) {
      const entry = cellValue(cell) ?? '';
      assert.equal(parseAllowedUrl(entry), undefined, `${entry} (${why}) is refused`);
    }
  });

  test('states the limits the code enforces', () => {
    assert.match(DOC, new RegExp(`longer than ${MAX_ALLOWED_URL_LENGTH} characters`));
    assert.match(DOC, new RegExp(`more than ${MAX_ALLOWED_URLS} entries`));
    assert.ok(parseAllowedUrl(`https://example.com/${'a'.repeat(MAX_ALLOWED_URL_LENGTH)}`) === undefined);
  });

  test('says plainly that URL restrictions are not authentication (T32)', () => {
    assert.match(DOC, /^## URL restrictions are not authentication$/m);
    assert.match(DOC, /\*\*Anyone can send any `Origin` and `Referer` header\.\*\*/);
  });
});

const pathSegment = fc.stringMatching(/^[a-z0-9]{1,4}$/);
const path = fc
  .array(pathSegment, { minLength: 0, maxLength: 3 })
  .map((segments) => `/${segments.join('/')}`);
const port = fc.constantFrom(undefined, '80', '443', '3000', '8080', '8443');
const scheme = fc.constantFrom('http:', 'https:');

describe('more url restriction properties', () => {
  test('a port in the entry allows exactly that port, a missing request port being the default', () => {
    fc.assert(
      fc.property(
        host,
        fc.option(scheme),
        port,
        scheme,
        port,
        (apex, entryScheme, entryPort, reqScheme, reqPort) => {
          const entryText = `${entryScheme ? `${entryScheme}//` : ''}${apex}${entryPort ? `:${entryPort}` : ''}`;
          const entry = parseAllowedUrl(entryText);
          assert.ok(entry, entryText);
          const effective = reqPort ?? (reqScheme === 'http:' ? '80' : '443');
          const expected =
            (!entryScheme || entryScheme === reqScheme) && (!entryPort || entryPort === effective);
          const referer = `${reqScheme}//${apex}${reqPort ? `:${reqPort}` : ''}/`;
          assert.equal(isAllowedSource([entry], { referer }), expected, `${entryText} vs ${referer}`);
        },
      ),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('a path prefix allows itself and what lies below it, with a trailing slash only what lies below', () => {
    fc.assert(
      fc.property(host, path, path, fc.boolean(), (apex, prefix, requestPath, slash) => {
        if (prefix === '/') return;
        const entryPath = slash ? `${prefix}/` : prefix;
        const entry = parseAllowedUrl(`https://${apex}${entryPath}`);
        assert.ok(entry);
        const expected = slash
          ? requestPath.startsWith(`${prefix}/`)
          : requestPath === prefix || requestPath.startsWith(`${prefix}/`);
        const referer = `https://${apex}${requestPath}`;
        assert.equal(isAllowedSource([entry], { referer }), expected, `${entryPath} vs ${requestPath}`);
        // The Origin carries no path: with an Origin alone, a path entry never matches.
        assert.equal(isAllowedSource([entry], { origin: `https://${apex}` }), false);
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('userinfo, query, fragment, a trailing dot and letter case in the request never change the outcome', () => {
    const entries = ['https://app.example.com/maps', '*.example.org', 'http://localhost:3000'].map(
      (entry) => parseAllowedUrl(entry) as AllowedUrl,
    );
    const requestHost = fc.oneof(
      host,
      fc.constantFrom('app.example.com', 'a.example.org', 'example.org', 'localhost'),
    );
    fc.assert(
      fc.property(
        scheme,
        requestHost,
        port,
        path,
        fc.stringMatching(/^[a-z0-9]{1,6}(:[a-z0-9]{0,6})?$/),
        fc.stringMatching(/^[a-z0-9=&]{0,10}$/),
        fc.stringMatching(/^[a-z0-9]{0,6}$/),
        fc.boolean(),
        (reqScheme, reqHost, reqPort, reqPath, userinfo, query, fragment, upper) => {
          const authority = `${reqHost}${reqPort ? `:${reqPort}` : ''}`;
          const plain = `${reqScheme}//${authority}${reqPath}`;
          const dressedHost = `${upper ? reqHost.toUpperCase() : reqHost}${reqHost === 'localhost' ? '' : '.'}`;
          const dressed = `${reqScheme}//${userinfo}@${dressedHost}${reqPort ? `:${reqPort}` : ''}${reqPath}?${query}#${fragment}`;
          assert.equal(
            isAllowedSource(entries, { referer: dressed }),
            isAllowedSource(entries, { referer: plain }),
            `${dressed} vs ${plain}`,
          );
        },
      ),
      { seed: 42, numRuns: 1000 },
    );
  });

  test('when Origin and Referer name different origins, the Referer is ignored', () => {
    const entries = ['https://app.example.com', 'http://b.example.net/maps'].map(
      (entry) => parseAllowedUrl(entry) as AllowedUrl,
    );
    const origins = fc.constantFrom(
      'https://app.example.com',
      'http://app.example.com',
      'https://evil.example.com',
      'http://b.example.net',
      'https://b.example.net',
    );
    fc.assert(
      fc.property(origins, origins, path, (origin, refererOrigin, refererPath) => {
        fc.pre(origin !== refererOrigin);
        const referer = `${refererOrigin}${refererPath}`;
        assert.equal(isAllowedSource(entries, { origin, referer }), isAllowedSource(entries, { origin }));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  test('more entries never refuse a request that fewer entries allowed', () => {
    const entryTexts = fc.array(
      fc.constantFrom(
        'https://app.example.com',
        'app.example.com:8080',
        '*.example.org/maps',
        'http://localhost:3000',
        'https://b.example.net/maps/',
      ),
      { maxLength: 5 },
    );
    const referers = fc.constantFrom(
      'https://app.example.com/',
      'http://app.example.com:8080/x',
      'https://a.example.org/maps/1',
      'http://localhost:3000/',
      'https://b.example.net/maps/x',
      'https://evil.com/',
    );
    fc.assert(
      fc.property(entryTexts, entryTexts, referers, (some, more, referer) => {
        const parse = (texts: string[]) => texts.map((text) => parseAllowedUrl(text) as AllowedUrl);
        if (isAllowedSource(parse(some), { referer })) {
          assert.equal(isAllowedSource(parse([...some, ...more]), { referer }), true);
        }
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});
