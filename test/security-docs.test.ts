import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHECKLIST, FIGURE_BENCHMARKS, FIGURE_TESTS } from '../scripts/security-checklist.ts';
import {
  currentChecklist,
  readSavedFigures,
  renderChecklist,
  SECURITY_DOC,
} from '../scripts/security-report.ts';

const ROOT = join(import.meta.dirname, '..');

test('the checklist has every row of the security plan, T01 to T74, once and in order', () => {
  const ids = CHECKLIST.map((row) => row.id);
  const expected = Array.from({ length: 74 }, (_, index) => `T${String(index + 1).padStart(2, '0')}`);
  assert.deepEqual(ids, expected);
});

test('every test the checklist names exists, with that title in that file', () => {
  for (const row of CHECKLIST) {
    for (const ref of row.tests) {
      const file = join(ROOT, ref.file);
      assert.ok(existsSync(file), `${row.id}: ${ref.file} does not exist`);
      assert.ok(
        readFileSync(file, 'utf8').includes(ref.title),
        `${row.id}: no test "${ref.title}" in ${ref.file}`,
      );
    }
  }
});

test('every row without a test says why', () => {
  for (const row of CHECKLIST.filter((candidate) => candidate.tests.length === 0)) {
    assert.ok(
      (row.figures ?? []).length > 0 || /no |not |nothing/i.test(row.answer),
      `${row.id} has no test`,
    );
  }
});

test('the figure sources exist, and every row with figures has figures in the saved file', () => {
  for (const file of [...FIGURE_TESTS, ...FIGURE_BENCHMARKS]) assert.ok(existsSync(join(ROOT, file)), file);
  const saved = readSavedFigures();
  for (const row of CHECKLIST) {
    for (const name of row.figures ?? []) {
      assert.ok(saved.rows[name], `${row.id}: no figures "${name}" in docs/security-figures.json`);
    }
  }
});

test('docs/security.md shows the checklist as `npm run security:docs` writes it', () => {
  const doc = readFileSync(SECURITY_DOC, 'utf8');
  assert.equal(
    currentChecklist(doc),
    renderChecklist(readSavedFigures()),
    'run `npm run security:docs` after changing scripts/security-checklist.ts',
  );
});
