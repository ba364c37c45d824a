import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, redact } from './logger.ts';

const SECRET =
  'sk.eyJ1IjoiYWxpY2UiLCJhIjoiY3NxdDhlczg4d2tpMWp6ZDBhNWlxZ3IwbSJ9.34oa3jvST6rU8HB4gtc9d2ERMTquRJKw';

test('a token is redacted wherever it sits, also glued to other text', () => {
  for (const text of [
    SECRET,
    `Bearer ${SECRET}`,
    `Bearer%20${SECRET}`,
    `x%3D${SECRET}`,
    `note=abc${SECRET}`,
    `12${SECRET}`,
    `%253D${SECRET}`,
    `\\n${SECRET}`,
    SECRET.replace('sk.', 'SK.'),
    `"${SECRET}"`,
    `x_${SECRET}`,
    SECRET.replaceAll('.', '%2E'),
    `/styles/v1/a?x=1&access_token=${SECRET}`,
  ]) {
    const shown = redact(text);
    assert.ok(!shown.includes(SECRET.slice(3)), `${text} -> ${shown}`);
    assert.match(shown, /\[REDACTED\]/);
  }
});

test('text that merely contains "sk." or "pk." after a letter is left alone', () => {
  for (const text of [
    'getaddrinfo ENOTFOUND db-disk.production1.internal',
    'http://helpdesk.corporate1.example/',
    'at Task.processQueue.run (queue.js:1:2)',
  ]) {
    assert.equal(redact(text), text);
  }
});

test('secret query values are redacted by name', () => {
  assert.equal(
    redact('/x?access_token=abc&password=hunter2&token=t&q=1'),
    '/x?access_token=[REDACTED]&password=[REDACTED]&token=[REDACTED]&q=1',
  );
});

test('one line per entry: a newline in a value cannot forge a second entry', () => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', write: (line) => lines.push(line) });
  logger.info('request', { note: 'x\n{"level":"error","msg":"fake"}' });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.split('\n').length, 2, 'the entry and its terminating newline');
  assert.equal((JSON.parse(lines[0] ?? '') as { note: string }).note, 'x\n{"level":"error","msg":"fake"}');
});
