import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
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
