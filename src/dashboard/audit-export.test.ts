import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AuditEvent } from '../core/audit.ts';
import { CSV_COLUMNS, csvEvent, csvField, csvHeader } from './audit-export.ts';

/** RFC 4180 fields of one record (no line breaks outside quotes here). */
function parseRecord(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quoted && char === '"' && line[i + 1] === '"') {
      field += '"';
      i++;
    } else if (char === '"') quoted = !quoted;
    else if (char === ',' && !quoted) {
      fields.push(field);
      field = '';
    } else field += char;
  }
  fields.push(field);
  return fields;
}

test('cells a spreadsheet would run as a formula get a leading quote', () => {
  const cases: [string, string][] = [
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', "'\t=1"],
    ['=HYPERLINK("https://evil.test","x")', `"'=HYPERLINK(""https://evil.test"",""x"")"`],
    ['plain', 'plain'],
    ['a = b', 'a = b'],
    ['', ''],
    ['2027-03-10T08:00:00.000Z', '2027-03-10T08:00:00.000Z'],
    ['::1', '::1'],
  ];
  for (const [value, cell] of cases) assert.equal(csvField(value), cell, JSON.stringify(value));
});

test('commas, quotes and line breaks are quoted; every value reads back (past its formula quote)', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  fc.assert(
    fc.property(fc.string(), (value) => {
      const [back] = parseRecord(csvField(value.replace(/[\r\n]/g, ' ')));
      const expected = value.replace(/[\r\n]/g, ' ');
      assert.equal(back, /^[=+\-@\t]/.test(expected) ? `'${expected}` : expected);
    }),
  );
});

test('one event per line, in the header’s columns, with the token’s name', () => {
  assert.equal(csvHeader(), `${CSV_COLUMNS.join(',')}\r\n`);
  const bare: AuditEvent = {
    id: 'e000000000000000000000001',
    username: 'alice',
    time: '2027-03-10T08:00:00.000Z',
    action: 'token.update',
    actor: 'user:alice',
    channel: 'dashboard',
    ip: null,
    target: 'c000000000000000000000001',
  };
  const event: AuditEvent = { ...bare, ip: '203.0.113.7', details: { fields: ['note', 'scopes'] } };
  const labels = new Map([['c000000000000000000000001', { note: '=cmd', deleted: false }]]);
  const line = csvEvent(event, labels);
  assert.ok(line.endsWith('\r\n'));
  assert.deepEqual(parseRecord(line.slice(0, -2)), [
    '2027-03-10T08:00:00.000Z',
    'token.update',
    'Token updated: name, scopes',
    'user:alice',
    'dashboard',
    '203.0.113.7',
    'c000000000000000000000001',
    "'=cmd",
    '{"fields":["note","scopes"]}',
    'e000000000000000000000001',
  ]);
  const unnamed = parseRecord(csvEvent(bare, new Map()).slice(0, -2));
  assert.deepEqual([unnamed[2], unnamed[5], unnamed[7], unnamed[8]], ['Token updated', '', '', '']);
});
