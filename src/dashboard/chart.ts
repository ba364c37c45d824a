import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export interface ChartSeries {
  readonly name: string;
  readonly values: readonly number[];
}

export interface ChartInput {
  /** Prefix of the element ids that aria-labelledby points at, e.g. 'usage-by-token'. */
  readonly id: string;
  readonly title: string;
  /** One sentence that says what the chart shows, read out after the title. */
  readonly description: string;
  /** Bucket starts as ISO times in UTC, one per bar. */
  readonly timestamps: readonly string[];
  readonly bucket: 'hour' | 'day';
  /** Stacked bottom to top in this order; each has one value per timestamp. */
  readonly series: readonly ChartSeries[];
}

type Bucket = ChartInput['bucket'];

/**
 * Okabe-Ito, told apart under the common colour-vision deficiencies. Yellow comes late because it is
 * faint on white; black last so an 'Other' tail series stays neutral.
 */
export const CHART_COLOURS: readonly string[] = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#D55E00',
  '#56B4E9',
  '#CC79A7',
  '#F0E442',
  '#000000',
];

const WIDTH = 720;
const HEIGHT = 280;
const PLOT = { left: 56, right: 696, top: 12, bottom: 232 } as const;
const MAX_X_LABELS = 8;
const HOUR_MS = 3_600_000;
const HOUR_STEPS = [1, 2, 3, 4, 6, 12, 24];
const TICK_SUFFIXES = ['', 'k', 'M', 'B', 'T'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const COUNT = new Intl.NumberFormat('en-US');
const HTML_ID = /^[A-Za-z][A-Za-z0-9_-]*$/;

function markup(strings: TemplateStringsArray, ...values: unknown[]): HtmlEscapedString {
  const out = html(strings, ...values);
  // html`` only returns a Promise when handed one; every value here is sync, so a Promise is a bug.
  if (out instanceof Promise) throw new TypeError('chart markup must render synchronously');
  return out;
}

/** Gridline values from 0 up to the first round number at or above `max`: 2 to 5 ticks. */
export function niceTicks(max: number): number[] {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const step = niceStep(top);
  return Array.from({ length: Math.ceil(top / step) + 1 }, (_, i) => i * step);
}

function niceStep(max: number): number {
  for (let magnitude = 1; ; magnitude *= 10) {
    for (const multiple of [1, 2, 2.5, 5]) {
      const step = multiple * magnitude;
      // Requests are whole numbers: a step of 0.5 or 2.5 would label fractions of a request.
      if (Number.isInteger(step) && max / step <= 4) return step;
    }
  }
}

/** Compact tick label: 950, 1.5k, 250k, 1M. */
export function formatTick(value: number): string {
  let scaled = value;
  let unit = 0;
  // Compare the rounded value so 999,999 reads 1M, not 1000k.
  while (Math.abs(round(scaled, 1)) >= 1000 && unit < TICK_SUFFIXES.length - 1) {
    scaled /= 1000;
    unit += 1;
  }
  return `${round(scaled, 1)}${TICK_SUFFIXES[unit] ?? ''}`;
}

/** Axis label for one bucket start: 'Nov 30' for days, '14:00' for hours (UTC). */
export function xLabel(iso: string, bucket: Bucket): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  if (bucket === 'day') return `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`;
  return `${String(date.getUTCHours()).padStart(2, '0')}:00`;
}

/** Indices of the buckets that get an x label: at most 8, evenly spaced, so labels never overlap. */
export function xLabelIndices(timestamps: readonly string[], bucket: Bucket): number[] {
  const step = labelStep(timestamps.length, bucket);
  const picked: number[] = [];
  timestamps.forEach((iso, index) => {
    const last = picked.at(-1);
    if ((last === undefined || index - last >= step) && onStep(iso, index, step, bucket)) picked.push(index);
  });
  return picked;
}

function labelStep(count: number, bucket: Bucket): number {
  const minimum = count / MAX_X_LABELS;
  if (bucket === 'day') return Math.max(1, Math.ceil(minimum));
  return HOUR_STEPS.find((step) => step >= minimum) ?? Math.ceil(minimum / 24) * 24;
}

function onStep(iso: string, index: number, step: number, bucket: Bucket): boolean {
  const hours = Math.floor(Date.parse(iso) / HOUR_MS);
  // Hourly labels sit on round clock times (00:00, 06:00), wherever the range happens to start.
  if (bucket === 'hour' && Number.isFinite(hours)) return hours % step === 0;
  return index % step === 0;
}

function axisLabel(iso: string, bucket: Bucket): string {
  // At midnight an hourly axis names the day, or a week of hours would read like one day.
  if (bucket === 'hour' && xLabel(iso, 'hour') === '00:00') return xLabel(iso, 'day');
  return xLabel(iso, bucket);
}

function tooltip(name: string, value: number, iso: string, bucket: Bucket): string {
  const day = xLabel(iso, 'day') || iso;
  const when = bucket === 'day' ? day : `${day} at ${xLabel(iso, 'hour')} UTC`;
  return `${name}: ${COUNT.format(value)} ${value === 1 ? 'request' : 'requests'} on ${when}`;
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** A count as drawn: a negative or non-finite value is an upstream bug that must not reach an attribute. */
function count(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : 0;
}

function colour(seriesIndex: number): string {
  return CHART_COLOURS[seriesIndex % CHART_COLOURS.length] ?? '#000000';
}

function yOf(value: number, yMax: number): number {
  return round(PLOT.bottom - (value / yMax) * (PLOT.bottom - PLOT.top), 2);
}

function slotWidth(buckets: number): number {
  return (PLOT.right - PLOT.left) / Math.max(1, buckets);
}

function renderStack(input: ChartInput, index: number, yMax: number): HtmlEscapedString[] {
  const slot = slotWidth(input.timestamps.length);
  const x = round(PLOT.left + slot * (index + 0.1), 2);
  const width = round(slot * 0.8, 2);
  const iso = input.timestamps[index] ?? '';
  let below = 0;
  return input.series.flatMap((series, s) => {
    const value = count(series.values[index]);
    if (value === 0) return [];
    // Both edges come from running totals, so rounding never opens a gap between segments.
    const bottom = yOf(below, yMax);
    below += value;
    const top = yOf(below, yMax);
    return markup`<rect class="chart-bar chart-series-${s % CHART_COLOURS.length}" x="${x}" y="${top}" width="${width}" height="${round(bottom - top, 2)}" fill="${colour(s)}"><title>${tooltip(series.name, value, iso, input.bucket)}</title></rect>`;
  });
}

function renderYAxis(ticks: readonly number[], yMax: number): HtmlEscapedString[] {
  return ticks.map((tick) => {
    const y = yOf(tick, yMax);
    const kind = tick === 0 ? 'chart-baseline' : 'chart-gridline';
    return markup`<line class="${kind}" x1="${PLOT.left}" x2="${PLOT.right}" y1="${y}" y2="${y}" stroke="currentColor" stroke-opacity="${tick === 0 ? 0.6 : 0.15}"/>
<text class="chart-y-tick" x="${PLOT.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(tick)}</text>`;
  });
}

function renderXAxis(input: ChartInput): HtmlEscapedString[] {
  const slot = slotWidth(input.timestamps.length);
  return xLabelIndices(input.timestamps, input.bucket).map((index) => {
    const x = round(PLOT.left + slot * (index + 0.5), 2);
    const label = axisLabel(input.timestamps[index] ?? '', input.bucket);
    return markup`<text class="chart-x-tick" x="${x}" y="${PLOT.bottom + 16}" text-anchor="middle">${label}</text>`;
  });
}

function renderCaptions(empty: boolean): HtmlEscapedString {
  const midX = (PLOT.left + PLOT.right) / 2;
  const midY = (PLOT.top + PLOT.bottom) / 2;
  const note = empty
    ? markup`<text class="chart-empty" x="${midX}" y="${midY}" text-anchor="middle" dominant-baseline="middle">No requests in this period</text>`
    : '';
  return markup`<text class="chart-axis-label" x="14" y="${midY}" transform="rotate(-90 14 ${midY})" text-anchor="middle" dominant-baseline="middle">Requests</text>
<text class="chart-axis-label" x="${midX}" y="${HEIGHT - 6}" text-anchor="middle">Time (UTC)</text>
${note}`;
}

function renderLegend(series: readonly ChartSeries[]): HtmlEscapedString {
  // An HTML list, not SVG text: role="img" hides the SVG's insides from screen readers.
  const items = series.map(
    (entry, s) =>
      markup`<li class="chart-legend-item"><svg class="chart-swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true"><rect class="chart-series-${s % CHART_COLOURS.length}" width="12" height="12" rx="2" fill="${colour(s)}"/></svg> <span class="chart-legend-name">${entry.name}</span></li>`,
  );
  return series.length === 0 ? markup`` : markup`<ul class="chart-legend">${items}</ul>`;
}

function bucketTotals(input: ChartInput): number[] {
  return input.timestamps.map((_, index) =>
    input.series.reduce((sum, series) => sum + count(series.values[index]), 0),
  );
}

function assertValid(input: ChartInput): void {
  if (!HTML_ID.test(input.id)) throw new TypeError('chart id must be letters, digits, - or _');
  for (const series of input.series) {
    if (series.values.length !== input.timestamps.length) {
      throw new TypeError('every chart series needs one value per timestamp');
    }
  }
}

/** A stacked bar chart as static SVG plus an HTML legend: no script, no inline style. */
export function renderChart(input: ChartInput): HtmlEscapedString {
  assertValid(input);
  const totals = bucketTotals(input);
  const ticks = niceTicks(totals.reduce((max, total) => Math.max(max, total), 0));
  const yMax = ticks.at(-1) ?? 1;
  const empty = totals.every((total) => total === 0);
  const { id } = input;
  return markup`<div class="chart">
<svg class="chart-svg" role="img" aria-labelledby="${id}-title ${id}-desc" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" font-size="11" fill="currentColor">
<title id="${id}-title">${input.title}</title>
<desc id="${id}-desc">${input.description}</desc>
<g class="chart-grid">${renderYAxis(ticks, yMax)}</g>
<g class="chart-bars">${input.timestamps.map((_, index) => renderStack(input, index, yMax))}</g>
<g class="chart-x-axis">${renderXAxis(input)}</g>
${renderCaptions(empty)}
</svg>
${renderLegend(input.series)}
</div>`;
}
