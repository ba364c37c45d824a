import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { clientAddress, parseTrustedProxies, throttlingKey } from '../core/client-address.ts';

const NONE = parseTrustedProxies('');
const PROXIES = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, ::1, 2001:db8::/32');
const CLIENT = '203.0.113.7';

test('parses addresses and CIDR ranges of both families, normalised', () => {
  const trusted = parseTrustedProxies(' 127.0.0.1 , 10.0.0.0/8,::1, 2001:DB8:0::/32, ::ffff:192.0.2.1, ');
  assert.deepEqual(trusted.entries, ['127.0.0.1', '10.0.0.0/8', '::1', '2001:db8::/32', '192.0.2.1']);
  assert.deepEqual(parseTrustedProxies('').entries, []);
  assert.deepEqual(parseTrustedProxies('  ').entries, []);
});

test('a bad entry is a TypeError naming it', () => {
  const bad = [
    'localhost',
    '256.1.1.1',
    '10.0.0',
    '010.0.0.1',
    '10.0.0.0/33',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    '10.0.0.0/-1',
    '10.0.0.0/ 8',
    '::1/129',
    '2001:db8::/1x',
    '::ffff:10.0.0.0/104',
    '*',
  ];
  for (const entry of bad) {
    assert.throws(
      () => parseTrustedProxies(`127.0.0.1, ${entry}`),
      (error: unknown) => error instanceof TypeError && error.message.includes(`"${entry}"`),
      entry,
    );
  }
  assert.throws(() => parseTrustedProxies('10.0.0.0/33'), /prefix length must be 0-32/);
  assert.throws(() => parseTrustedProxies('::ffff:10.0.0.0/104'), /IPv4 notation/);
});

test('without trusted proxies the socket address is used and X-Forwarded-For ignored', () => {
  assert.equal(clientAddress(CLIENT, undefined, NONE), CLIENT);
  assert.equal(clientAddress(CLIENT, '198.51.100.1', NONE), CLIENT);
  assert.equal(clientAddress('127.0.0.1', '198.51.100.1', NONE), '127.0.0.1');
});

test('T36: rotating X-Forwarded-For values never changes the key without trust', () => {
  const keys = new Set<string>();
  for (let i = 0; i < 100; i++) keys.add(clientAddress(CLIENT, `198.51.100.${i}, 192.0.2.${i}`, NONE));
  assert.deepEqual([...keys], [CLIENT]);
});

test('an untrusted peer cannot spoof the header even when proxies are configured', () => {
  assert.equal(clientAddress(CLIENT, '10.0.0.1', PROXIES), CLIENT);
  assert.equal(clientAddress(CLIENT, '198.51.100.1', PROXIES), CLIENT);
});

test('behind a trusted proxy the nearest untrusted hop is the client', () => {
  assert.equal(clientAddress('10.0.0.2', CLIENT, PROXIES), CLIENT);
  // The leftmost value is whatever the client sent; only the proxy-appended hops count.
  assert.equal(clientAddress('10.0.0.2', `198.51.100.1, ${CLIENT}`, PROXIES), CLIENT);
  assert.equal(clientAddress('127.0.0.1', `198.51.100.1, ${CLIENT}, 10.0.0.5, ::1`, PROXIES), CLIENT);
});

test('rotating the spoofed part of the header behind a trusted proxy keeps one key', () => {
  const keys = new Set<string>();
  for (let i = 0; i < 100; i++) keys.add(clientAddress('10.0.0.2', `198.51.100.${i}, ${CLIENT}`, PROXIES));
  assert.deepEqual([...keys], [CLIENT]);
});

test('a missing, garbled or all-trusted header falls back to the socket address', () => {
  assert.equal(clientAddress('10.0.0.2', undefined, PROXIES), '10.0.0.2');
  assert.equal(clientAddress('10.0.0.2', '', PROXIES), '10.0.0.2');
  assert.equal(clientAddress('10.0.0.2', 'garbage', PROXIES), '10.0.0.2');
  assert.equal(clientAddress('10.0.0.2', '10.0.0.3, 10.0.0.4', PROXIES), '10.0.0.2');
});

test('an unreadable hop ends the walk, so nothing left of it is believed', () => {
  assert.equal(clientAddress('10.0.0.2', `${CLIENT}, unknown`, PROXIES), '10.0.0.2');
  assert.equal(clientAddress('10.0.0.2', `${CLIENT}, <script>, 10.0.0.3`, PROXIES), '10.0.0.2');
  assert.equal(clientAddress('10.0.0.2', `garbage, ${CLIENT}`, PROXIES), CLIENT);
});

test('empty elements from joined headers are skipped', () => {
  assert.equal(clientAddress('10.0.0.2', `${CLIENT}, , `, PROXIES), CLIENT);
});

test('hops with ports are read as addresses', () => {
  assert.equal(clientAddress('10.0.0.2', `${CLIENT}:51234`, PROXIES), CLIENT);
  assert.equal(clientAddress('10.0.0.2', '[2001:DB9::7]:443', PROXIES), '2001:db9::7');
  assert.equal(clientAddress('10.0.0.2', '[2001:db9::7]', PROXIES), '2001:db9::7');
});

test('IPv4-mapped IPv6 is normalised, in the socket address and the header', () => {
  assert.equal(clientAddress(`::ffff:${CLIENT}`, undefined, NONE), CLIENT);
  assert.equal(clientAddress('::FFFF:cb00:7107', undefined, NONE), CLIENT);
  assert.equal(clientAddress('::ffff:10.0.0.2', `::ffff:${CLIENT}`, PROXIES), CLIENT);
  assert.equal(clientAddress('10.0.0.2', `${CLIENT}, ::ffff:10.0.0.9`, PROXIES), CLIENT);
});

test('IPv6 addresses are canonical and IPv6 ranges are trusted', () => {
  assert.equal(clientAddress('2001:DB9:0:0::1', undefined, NONE), '2001:db9::1');
  assert.equal(clientAddress('fe80::1%eth0', undefined, NONE), 'fe80::1');
  assert.equal(clientAddress('2001:db8:ffff::1', '2001:db9::1', PROXIES), '2001:db9::1');
  assert.equal(clientAddress('0:0:0:0:0:0:0:1', '2001:db9::1', PROXIES), '2001:db9::1');
  assert.equal(clientAddress('2001:db9::2', '2001:db9::1', PROXIES), '2001:db9::2');
});

test('an unknown socket address is "unknown"', () => {
  assert.equal(clientAddress(undefined, CLIENT, NONE), 'unknown');
  assert.equal(clientAddress(undefined, CLIENT, PROXIES), 'unknown');
  assert.equal(clientAddress('', undefined, NONE), 'unknown');
  assert.equal(clientAddress('not an address', undefined, NONE), 'unknown');
});

test('without trust the result is the socket address for any header (property)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.string({ maxLength: 200 }), (peer, header) => {
      assert.equal(clientAddress(peer, header, NONE), clientAddress(peer, undefined, NONE));
    }),
  );
});

test('behind a trusted proxy the result is the peer or an untrusted hop (property)', () => {
  const hop = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('10.1.2.3', '::1', 'unknown', '', 'x:y'));
  fc.assert(
    fc.property(fc.array(hop, { maxLength: 8 }), (hops) => {
      const result = clientAddress('10.0.0.2', hops.join(', '), PROXIES);
      assert.notEqual(isIP(result), 0);
      if (result === '10.0.0.2') return;
      assert.equal(PROXIES.list.check(result, isIP(result) === 4 ? 'ipv4' : 'ipv6'), false);
    }),
  );
});

describe('throttlingKey', () => {
  test('IPv6 clients count per /64, IPv4 addresses alone', () => {
    assert.equal(throttlingKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(throttlingKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(throttlingKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(throttlingKey('::1'), '0:0:0:0::/64');
    assert.equal(throttlingKey('203.0.113.7'), '203.0.113.7');
    assert.equal(throttlingKey('unknown'), 'unknown');
  });
});
