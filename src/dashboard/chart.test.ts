import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CHART_COLOURS,
  type ChartInput,
  formatTick,
  niceTicks,
  renderChart,
  xLabel,
  xLabelIndices,
} from './chart.ts';

const HOSTILE = '<img src=x onerror=alert(1)>';

interface Bar {
  readonly series: number;
  readonly x: number;
  readonly y: number;
  readonly height: number;
  readonly fill: string;
}

function bars(markup: string): Bar[] {
  const pattern =
    /<rect class="chart-bar chart-series-(\d+)" x="([^"]+)" y="([^"]+)" width="[^"]+" height="([^"]+)" fill="([^"]+)">/g;
  return [...markup.matchAll(pattern)].map(([, series, x, y, height, fill]) => ({
    series: Number(series),
    x: Number(x),
    y: Number(y),
    height: Number(height),
    fill: fill ?? '',
  }));
}

function days(count: number, from = Date.UTC(2026, 10, 1)): string[] {
  return Array.from({ length: count }, (_, i) => new Date(from + i * 86_400_000).toISOString());
}

function hours(count: number, from = Date.UTC(2026, 10, 1)): string[] {
  return Array.from({ length: count }, (_, i) => new Date(from + i * 3_600_000).toISOString());
}

function chart(overrides: Partial<ChartInput>): string {
  const timestamps = overrides.timestamps ?? days(3);
  return String(
    renderChart({
      id: 'usage-by-token',
      title: 'Requests per token',
      description: 'Allowed requests per token, per day, 2026-11-01 to 2026-11-03 (UTC)',
      timestamps,
      bucket: 'day',
      series: [{ name: 'web', values: timestamps.map(() => 1) }],
      ...overrides,
    }),
  );
}

function xTicks(markup: string): string[] {
  return [...markup.matchAll(/<text class="chart-x-tick"[^>]*>([^<]*)<\/text>/g)].map(
    ([, label]) => label ?? '',
  );
}

function yTicks(markup: string): string[] {
  return [...markup.matchAll(/<text class="chart-y-tick"[^>]*>([^<]*)<\/text>/g)].map(
    ([, label]) => label ?? '',
  );
}

test('niceTicks climbs in round steps to the first round number at or above the maximum', () => {
  assert.deepEqual(niceTicks(0), [0, 1]);
  assert.deepEqual(niceTicks(1), [0, 1]);
  assert.deepEqual(niceTicks(7), [0, 2, 4, 6, 8]);
  assert.deepEqual(niceTicks(10), [0, 5, 10]);
  assert.deepEqual(niceTicks(99), [0, 25, 50, 75, 100]);
  assert.deepEqual(niceTicks(1234), [0, 500, 1000, 1500]);
  assert.deepEqual(niceTicks(1e6), [0, 250_000, 500_000, 750_000, 1_000_000]);
  for (const bad of [-5, Number.NaN, Number.POSITIVE_INFINITY]) assert.deepEqual(niceTicks(bad), [0, 1]);
});

test('niceTicks always covers the maximum with 2 to 5 evenly spaced whole-number ticks', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), (max) => {
      const ticks = niceTicks(max);
      const step = ticks[1] ?? 0;
      assert.equal(ticks[0], 0);
      assert.ok(ticks.length >= 2 && ticks.length <= 5, `${ticks.length} ticks for ${max}`);
      assert.ok((ticks.at(-1) ?? 0) >= max);
      assert.ok(Number.isInteger(step) && /^(1|2|25|5)0*$/.test(String(step)), `step ${step}`);
      assert.deepEqual(
        ticks,
        ticks.map((_, i) => i * step),
      );
    }),
    { seed: 42, numRuns: 500 },
  );
});

test('formatTick writes compact numbers', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [950, '950'],
    [1000, '1k'],
    [1500, '1.5k'],
    [250_000, '250k'],
    [999_999, '1M'],
    [1_000_000, '1M'],
    [3_400_000, '3.4M'],
    [2_500_000_000, '2.5B'],
  ];
  for (const [value, text] of cases) assert.equal(formatTick(value), text, String(value));
});

test('xLabel names days and hours in UTC', () => {
  assert.equal(xLabel('2026-11-30T00:00:00.000Z', 'day'), 'Nov 30');
  assert.equal(xLabel('2026-01-05T00:00:00.000Z', 'day'), 'Jan 5');
  assert.equal(xLabel('2026-11-30T14:00:00.000Z', 'hour'), '14:00');
  assert.equal(xLabel('2026-11-30T23:30:00+02:00', 'hour'), '21:00');
  assert.equal(xLabel('not a time', 'day'), '');
});

test('stacked segments are proportional to their values and sit on each other', () => {
  const markup = chart({
    series: [
      { name: 'web', values: [10, 0, 5] },
      { name: 'ios', values: [30, 20, 0] },
    ],
  });
  const drawn = bars(markup);
  assert.deepEqual(
    drawn.map((bar) => bar.series),
    [0, 1, 1, 0],
  );
  const values = [10, 30, 20, 5];
  const [first] = drawn;
  assert.ok(first);
  const perRequest = first.height / 10;
  for (const [i, bar] of drawn.entries()) {
    assert.ok(Math.abs(bar.height - (values[i] ?? 0) * perRequest) < 0.02);
  }
  const [web, ios] = drawn;
  assert.ok(web && ios);
  assert.equal(ios.x, web.x);
  assert.ok(Math.abs(ios.y + ios.height - web.y) < 0.001, 'the upper segment starts where the lower ends');
  // The tallest stack (40) reaches the top tick (40), the full plot height.
  assert.ok(Math.abs((web.height + ios.height) / perRequest - 40) < 0.01);
  assert.deepEqual(yTicks(markup), ['0', '10', '20', '30', '40']);
});

test('hostile series names, titles and descriptions appear only escaped', () => {
  const markup = chart({
    title: `<script>alert(1)</script>`,
    description: `"><svg onload=alert(1)>`,
    series: [{ name: HOSTILE, values: [1, 2, 3] }],
  });
  assert.ok(!markup.includes('<img'));
  assert.ok(!markup.includes('<script'));
  assert.ok(!markup.includes('<svg onload'));
  assert.ok(markup.includes('<desc id="usage-by-token-desc">&quot;&gt;&lt;svg onload=alert(1)&gt;</desc>'));
  assert.ok(markup.includes('&lt;img src=x onerror=alert(1)&gt;: 2 requests on Nov 2'));
  assert.ok(markup.includes('<span class="chart-legend-name">&lt;img src=x onerror=alert(1)&gt;</span>'));
});

test('no NaN or Infinity reaches the markup for empty, single-bucket or broken inputs', () => {
  const inputs: Partial<ChartInput>[] = [
    { timestamps: [], series: [] },
    { timestamps: [], series: [{ name: 'web', values: [] }] },
    { series: [] },
    { series: [{ name: 'web', values: [0, 0, 0] }] },
    { timestamps: days(1), series: [{ name: 'web', values: [7] }] },
    { timestamps: hours(1), bucket: 'hour', series: [{ name: 'web', values: [0] }] },
    { series: [{ name: 'web', values: [Number.NaN, -3, Number.POSITIVE_INFINITY] }] },
    { timestamps: ['garbage', 'also garbage', ''] },
  ];
  for (const input of inputs) {
    const markup = chart(input);
    assert.ok(!/NaN|Infinity/.test(markup), JSON.stringify(input));
  }
});

test('an empty period says so and keeps a 0 to 1 axis', () => {
  for (const input of [{ series: [] }, { series: [{ name: 'web', values: [0, 0, 0] }] }]) {
    const markup = chart(input);
    assert.ok(markup.includes('>No requests in this period</text>'));
    assert.deepEqual(yTicks(markup), ['0', '1']);
    assert.equal(bars(markup).length, 0);
  }
  assert.ok(!chart({}).includes('No requests in this period'));
});

test('the SVG is labelled by its title and description, and uses no inline style', () => {
  const markup = chart({});
  assert.match(markup, /<svg [^>]*role="img"/);
  assert.match(markup, /<svg [^>]*aria-labelledby="usage-by-token-title usage-by-token-desc"/);
  assert.match(markup, /<svg [^>]*viewBox="0 0 720 280" width="100%" preserveAspectRatio="xMidYMid meet"/);
  assert.ok(markup.includes('<title id="usage-by-token-title">Requests per token</title>'));
  assert.ok(markup.includes('<desc id="usage-by-token-desc">Allowed requests per token, per day,'));
  assert.ok(markup.includes('>Requests</text>') && markup.includes('>Time (UTC)</text>'));
  assert.ok(!/style/i.test(markup), 'no style attribute or element');
  assert.ok(!/<script|\son\w+=/i.test(markup), 'no script');
});

test('x labels thin out to at most 8', () => {
  for (const bucket of ['hour', 'day'] as const) {
    for (const count of [1, 7, 8, 9, 24, 30, 31, 168, 720]) {
      const timestamps = bucket === 'hour' ? hours(count) : days(count);
      const labels = xTicks(chart({ timestamps, bucket, series: [] }));
      assert.ok(labels.length >= 1 && labels.length <= 8, `${count} ${bucket}s: ${labels.length} labels`);
      assert.ok(xLabelIndices(timestamps, bucket).length <= 8);
    }
  }
});

test('hourly labels fall on round clock times and name the day at midnight', () => {
  const day = xTicks(chart({ timestamps: hours(24), bucket: 'hour', series: [] }));
  assert.deepEqual(day, ['Nov 1', '03:00', '06:00', '09:00', '12:00', '15:00', '18:00', '21:00']);
  const offset = xTicks(
    chart({ timestamps: hours(24, Date.UTC(2026, 10, 1, 5)), bucket: 'hour', series: [] }),
  );
  assert.equal(offset[0], '06:00');
  const month = xTicks(chart({ timestamps: hours(720), bucket: 'hour', series: [] }));
  assert.ok(
    month.every((label) => /^[A-Z][a-z]{2} \d{1,2}$/.test(label)),
    month.join(),
  );
});

test('daily labels start at the first day', () => {
  assert.deepEqual(xTicks(chart({ timestamps: days(30), series: [] })), [
    'Nov 1',
    'Nov 5',
    'Nov 9',
    'Nov 13',
    'Nov 17',
    'Nov 21',
    'Nov 25',
    'Nov 29',
  ]);
});

test('tooltips give the count, the series and the bucket', () => {
  const markup = chart({
    timestamps: ['2026-11-30T14:00:00.000Z'],
    bucket: 'hour',
    series: [
      { name: 'web', values: [12_345] },
      { name: 'ios', values: [1] },
    ],
  });
  assert.ok(markup.includes('<title>web: 12,345 requests on Nov 30 at 14:00 UTC</title>'));
  assert.ok(markup.includes('<title>ios: 1 request on Nov 30 at 14:00 UTC</title>'));
});

test('colours cycle through the palette past eight series, and the legend matches', () => {
  const series = Array.from({ length: 10 }, (_, i) => ({ name: `token-${i}`, values: [1, 1, 1] }));
  const markup = chart({ series });
  const fills = bars(markup)
    .slice(0, 10)
    .map((bar) => bar.fill);
  assert.deepEqual(fills, [...CHART_COLOURS, CHART_COLOURS[0], CHART_COLOURS[1]]);
  const legend = [
    ...markup.matchAll(/<li class="chart-legend-item">.*?fill="([^"]+)".*?<span[^>]*>([^<]*)</g),
  ];
  assert.equal(legend.length, 10);
  assert.deepEqual(legend.map(([, fill, name]) => `${name} ${fill}`).slice(8), [
    `token-8 ${CHART_COLOURS[0]}`,
    `token-9 ${CHART_COLOURS[1]}`,
  ]);
  assert.ok(!chart({ series: [] }).includes('chart-legend'));
});

test('misuse throws TypeError', () => {
  assert.throws(() => chart({ id: 'two words' }), TypeError);
  assert.throws(() => chart({ id: '' }), TypeError);
  assert.throws(() => chart({ series: [{ name: 'web', values: [1, 2] }] }), TypeError);
});
