import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { topSeries, toRange } from './statistics.ts';

const NOW = Date.parse('2026-12-04T13:45:00Z');
const DAY = 86_400_000;

describe('toRange', () => {
  test('presets end with the current bucket and span whole buckets', () => {
    const query = { group: 'token', from: '', to: '' } as const;
    assert.deepEqual(toRange({ ...query, choice: '24h' }, NOW), {
      period: 'hour',
      start: Date.parse('2026-12-03T14:00:00Z'),
      end: Date.parse('2026-12-04T14:00:00Z'),
    });
    assert.deepEqual(toRange({ ...query, choice: '7d' }, NOW), {
      period: 'day',
      start: Date.parse('2026-11-28T00:00:00Z'),
      end: Date.parse('2026-12-05T00:00:00Z'),
    });
    const month = toRange({ ...query, choice: '30d' }, NOW);
    assert.ok(typeof month !== 'string');
    assert.equal((month.end - month.start) / DAY, 30);
  });

  test('a custom range covers both dates, inclusive, in UTC days', () => {
    const range = toRange({ choice: 'custom', group: 'service', from: '2026-11-01', to: '2026-11-30' }, NOW);
    assert.deepEqual(range, {
      period: 'day',
      start: Date.parse('2026-11-01T00:00:00Z'),
      end: Date.parse('2026-12-01T00:00:00Z'),
    });
  });

  test('unusable custom ranges explain themselves', () => {
    const custom = (from: string, to: string) => toRange({ choice: 'custom', group: 'token', from, to }, NOW);
    assert.equal(custom('2026-02-30', '2026-03-01'), 'Enter both dates as YYYY-MM-DD.');
    assert.equal(custom('yesterday', '2026-03-01'), 'Enter both dates as YYYY-MM-DD.');
    assert.equal(custom('2026-03-02', '2026-03-01'), 'The end date must not be before the start date.');
    assert.equal(custom('2024-01-01', '2026-01-01'), 'A custom range may span at most 366 days.');
    assert.ok(typeof custom('2025-01-01', '2026-01-01') !== 'string');
  });
});

describe('topSeries', () => {
  test('keeps the busiest seven and adds the rest up as Other', () => {
    const series = Array.from({ length: 10 }, (_, index) => ({ name: `t${index}`, values: [index, 1] }));
    const top = topSeries(series);
    assert.equal(top.length, 8);
    assert.deepEqual(
      top.map((s) => s.name),
      ['t9', 't8', 't7', 't6', 't5', 't4', 't3', 'Other (3)'],
    );
    assert.deepEqual(top.at(-1)?.values, [0 + 1 + 2, 3]);
  });

  test('eight or fewer series stay as they are, busiest first', () => {
    const top = topSeries([
      { name: 'a', values: [1] },
      { name: 'b', values: [5] },
    ]);
    assert.deepEqual(
      top.map((s) => s.name),
      ['b', 'a'],
    );
  });
});
