import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Clock } from '../core/ports.ts';
import { hasValidSignature, issueTemporaryToken, parseToken, type SigningKey } from '../core/token-format.ts';
import { FileKeyRing, KEY_FILE_NAME } from './file-key-ring.ts';

const RETIREMENT_MS = 3_600_000 + 60_000;
const START = Date.parse('2030-01-01T00:00:00.000Z');
const roots: string[] = [];

after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'tessera-keys-'));
  roots.push(root);
  return join(root, 'data', 'nested');
}

function manualClock(start = START): Clock & { t: number } {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

function storedKids(dir: string): string[] {
  const file = JSON.parse(readFileSync(join(dir, KEY_FILE_NAME), 'utf8')) as { keys: Array<{ kid: string }> };
  return file.keys.map((key) => key.kid);
}

function signs(key: SigningKey, verifier: SigningKey | undefined): boolean {
  const raw = issueTemporaryToken({ username: 'alice', expires: 2, issuedAt: 1, scopes: [] }, key);
  const token = parseToken(raw);
  assert.ok(token?.usage === 'tk');
  return verifier !== undefined && hasValidSignature(token, verifier);
}

describe('FileKeyRing', () => {
  test('creates its folder and a 0600 key file with exactly one key', () => {
    const dir = tempDir();
    const ring = new FileKeyRing(dir, manualClock());
    assert.ok(statSync(dir).isDirectory());
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, KEY_FILE_NAME)).mode & 0o777, 0o600);
    assert.equal(ring.listKeys().length, 1);
    assert.deepEqual(storedKids(dir), [ring.activeKey().id]);
    assert.equal(ring.activeKey().secret.length, 32);
    assert.match(ring.activeKey().id, /^[0-9A-Za-z]{12}$/);
  });

  test('a second instance reads the same key', () => {
    const dir = tempDir();
    const first = new FileKeyRing(dir, manualClock());
    const second = new FileKeyRing(dir, manualClock());
    assert.deepEqual(second.activeKey(), first.activeKey());
    assert.deepEqual(storedKids(dir), [first.activeKey().id]);
  });

  test('rotate adds the active key while the old one still verifies', () => {
    const dir = tempDir();
    const clock = manualClock();
    const ring = new FileKeyRing(dir, clock);
    const old = ring.activeKey();
    clock.t += 1000;
    const kid = ring.rotate();
    assert.notEqual(kid, old.id);
    assert.equal(ring.activeKey().id, kid);
    assert.deepEqual(storedKids(dir), [old.id, kid]);
    assert.equal(statSync(join(dir, KEY_FILE_NAME)).mode & 0o777, 0o600);
    assert.ok(signs(old, ring.findKey(old.id)));
    assert.ok(signs(ring.activeKey(), ring.findKey(kid)));
    assert.ok(!signs(old, ring.findKey(kid)));
    assert.equal(ring.findKey('unknown'), undefined);
  });

  test('an old key retires 1 h + 60 s after its successor and the next rotate drops it', () => {
    const dir = tempDir();
    const clock = manualClock();
    const ring = new FileKeyRing(dir, clock);
    const old = ring.activeKey();
    const kid = ring.rotate();
    clock.t = START + RETIREMENT_MS;
    assert.ok(ring.findKey(old.id));
    clock.t = START + RETIREMENT_MS + 1;
    assert.equal(ring.findKey(old.id), undefined);
    assert.ok(ring.findKey(kid));
    const newest = ring.rotate();
    assert.deepEqual(storedKids(dir), [kid, newest]);
    assert.deepEqual(
      ring.listKeys().map((key) => key.kid),
      [kid, newest],
    );
  });

  test('a rotate keeps keys whose successor is younger than the retirement time', () => {
    const dir = tempDir();
    const clock = manualClock();
    const ring = new FileKeyRing(dir, clock);
    const first = ring.activeKey().id;
    const second = ring.rotate();
    clock.t = START + RETIREMENT_MS;
    const third = ring.rotate();
    assert.deepEqual(storedKids(dir), [first, second, third]);
  });

  test('rotations by two instances both land and leave no lock or temporary file behind', () => {
    const dir = tempDir();
    const first = new FileKeyRing(dir, manualClock());
    const second = new FileKeyRing(dir, manualClock());
    const a = first.rotate();
    const b = second.rotate();
    assert.deepEqual(storedKids(dir).slice(-2), [a, b]);
    assert.equal(storedKids(dir).length, 3);
    assert.deepEqual(readdirSync(dir).sort(), [KEY_FILE_NAME]);
  });

  test('an instance notices a rotation by another one after a second of its clock', () => {
    const dir = tempDir();
    const writer = new FileKeyRing(dir, manualClock());
    const readerClock = manualClock();
    const reader = new FileKeyRing(dir, readerClock);
    const old = reader.activeKey();
    const kid = writer.rotate();
    readerClock.t += 999;
    assert.equal(reader.activeKey().id, old.id);
    assert.equal(reader.findKey(kid), undefined);
    readerClock.t += 1;
    assert.equal(reader.activeKey().id, kid);
    assert.deepEqual(reader.findKey(kid), writer.activeKey());
  });
});
