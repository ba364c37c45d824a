import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseStrictJson } from './strict-json.ts';

function refused(text: string): string {
  const result = parseStrictJson(text);
  assert.ok(!result.ok, `${text} is refused`);
  return result.message;
}

function nested(depth: number): string {
  return `${'['.repeat(depth - 1)}{"a":1}${']'.repeat(depth - 1)}`;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** What the parser should say about a document, judged on the value JSON.parse builds. */
function shouldRefuse(value: unknown, depth = 1): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (value === null || typeof value !== 'object') return false;
  if (depth > 32) return true;
  const entries = Array.isArray(value) ? value.map((item) => ['', item] as const) : Object.entries(value);
  return entries.some(
    ([key, item]) => FORBIDDEN.has(key) || key.includes('\0') || shouldRefuse(item, depth + 1),
  );
}

describe('parseStrictJson', () => {
  test('passes ordinary documents through', () => {
    assert.deepEqual(parseStrictJson('{"note":"a","scopes":["styles:read"],"n":null}'), {
      ok: true,
      value: { note: 'a', scopes: ['styles:read'], n: null },
    });
    assert.deepEqual(parseStrictJson(' [1, "two", {"a": {"b": []}}] '), {
      ok: true,
      value: [1, 'two', { a: { b: [] } }],
    });
    assert.deepEqual(parseStrictJson('{"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]}').ok, true);
    assert.deepEqual(parseStrictJson('{"a":"\\"b\\":1","b":"\\\\"}').ok, true);
  });

  test('refuses text that is not JSON', () => {
    for (const text of ['', '{', '{"a":1,}', "{'a':1}", 'undefined', '{"a":1}x']) {
      assert.equal(refused(text), 'request body is not valid JSON');
    }
  });

  test('refuses duplicate keys at any depth and in any spelling', () => {
    const documents = [
      '{"note":1,"note":2}',
      '{"note":1,"\\u006eote":2}',
      '{"\\u006eote":1,"n\\u006fte":2}',
      '{"a\\/b":1,"a/b":2}',
      '{"a":{"b":{"c":1,"c":2}}}',
      '{"a":[1,{"x":1,"y":[],"x":2}]}',
      '{"a":[1,2],"a":3}',
      '[{"k":1},{"k":1,"k":1}]',
      '{"a" : 1 , "a"\n:\t2}',
    ];
    for (const text of documents) assert.match(refused(text), /duplicate key/, text);
  });

  test('refuses prototype-related keys, escaped or not, at any depth', () => {
    for (const key of ['__proto__', 'constructor', 'prototype', '\\u005f_proto__']) {
      assert.match(refused(`{"${key}":{}}`), /must not contain the key/);
      assert.match(refused(`{"a":[{"${key}":1}]}`), /must not contain the key/);
    }
    assert.equal(parseStrictJson('{"a":"__proto__"}').ok, true);
    assert.equal(parseStrictJson('["constructor"]').ok, true);
  });

  test('refuses NUL in strings and in keys', () => {
    assert.match(refused('{"note":"a\\u0000b"}'), /NUL/);
    assert.match(refused('{"a\\u0000":1}'), /NUL/);
    assert.match(refused('[[["\\u0000"]]]'), /NUL/);
    assert.match(refused('"\\u0000"'), /NUL/);
    assert.equal(parseStrictJson('{"note":"\\u0001"}').ok, true);
  });

  test('allows 32 levels of nesting and refuses 33', () => {
    assert.equal(parseStrictJson(nested(32)).ok, true);
    assert.match(refused(nested(33)), /nested more than 32 levels/);
    assert.equal(parseStrictJson(`${'['.repeat(32)}${']'.repeat(32)}`).ok, true);
    assert.match(refused(`${'['.repeat(33)}${']'.repeat(33)}`), /nested/);
    assert.equal(parseStrictJson('"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["').ok, true);
    assert.match(refused(`${'['.repeat(5000)}${']'.repeat(5000)}`), /nested/);
  });

  test('property: valid documents give exactly what JSON.parse gives', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), (text) => {
        const value: unknown = JSON.parse(text);
        const result = parseStrictJson(text);
        if (shouldRefuse(value)) {
          assert.equal(result.ok, false);
        } else {
          assert.deepEqual(result, { ok: true, value });
        }
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  test('property: a repeated key is always refused', () => {
    const key = fc.string({ unit: 'binary', maxLength: 8 });
    fc.assert(
      fc.property(key, fc.json({ maxDepth: 2 }), fc.json({ maxDepth: 2 }), (name, first, second) => {
        const spelled = JSON.stringify(name);
        const escaped = `"${[...name].map((char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`).join('')}"`;
        const usable = [...name].every((char) => (char.codePointAt(0) ?? 0) <= 0xffff);
        const other = usable ? escaped : spelled;
        assert.equal(parseStrictJson(`{"w":{${spelled}:${first},${other}:${second}}}`).ok, false);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  test('property: never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        assert.equal(typeof parseStrictJson(text).ok, 'boolean');
      }),
      { seed: 42, numRuns: 1000 },
    );
  });
});
