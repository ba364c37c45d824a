import type { Hono } from 'hono';
import { html } from 'hono/html';
import { isTesseraError } from '../core/errors.ts';
import type { UsagePeriod } from '../services/usage-service.ts';
import { type ChartSeries, renderChart } from './chart.ts';
import type { DashboardContext, DashboardEnv, Kit } from './kit.ts';
import { type Markup, type Notice, type PageContext, page } from './view.ts';

const DAY_MS = 86_400_000;
const MAX_SERIES = 8;
const PRESETS = {
  '24h': { label: 'Last 24 hours', period: 'hour', span: DAY_MS },
  '7d': { label: 'Last 7 days', period: 'day', span: 7 * DAY_MS },
  '30d': { label: 'Last 30 days', period: 'day', span: 30 * DAY_MS },
} as const satisfies Record<string, { label: string; period: UsagePeriod; span: number }>;

type PeriodChoice = keyof typeof PRESETS | 'custom';
type GroupChoice = 'token' | 'service';

export interface StatisticsQuery {
  readonly choice: PeriodChoice;
  readonly group: GroupChoice;
  readonly from: string;
  readonly to: string;
}

interface Range {
  readonly period: UsagePeriod;
  readonly start: number;
  readonly end: number;
}

/** The statistics page: a period, a grouping, a chart and the same numbers as a table. */
export function statisticsRoutes(app: Hono<DashboardEnv>, kit: Kit): void {
  app.get('/account/statistics', async (c) => {
    const query = readQuery(c, kit.services.clock.now());
    const range = toRange(query, kit.services.clock.now());
    if (typeof range === 'string')
      return render(kit, c, query, undefined, { kind: 'error', text: range }, 422);
    try {
      return render(kit, c, query, await loadSeries(kit, c, query.group, range));
    } catch (error) {
      if (!isTesseraError(error) || error.status >= 500) throw error;
      return render(kit, c, query, undefined, { kind: 'error', text: error.message }, 422);
    }
  });
}

interface Loaded {
  readonly timestamps: readonly string[];
  readonly bucket: UsagePeriod;
  readonly series: readonly ChartSeries[];
}

async function loadSeries(kit: Kit, c: DashboardContext, group: GroupChoice, range: Range): Promise<Loaded> {
  const { usageReports } = kit.services;
  const authorizer = kit.authorizer(c);
  const username = kit.session(c).record.username;
  if (group === 'service') {
    const report = await usageReports.report(authorizer, username, range);
    const series = Object.entries(report.services).map(([name, values]) => ({ name, values }));
    return { timestamps: report.timestamps, bucket: range.period, series: topSeries(series) };
  }
  const report = await usageReports.reportByToken(authorizer, username, range);
  const series = report.tokens.map((token) => ({
    name: `${token.note || 'Unnamed'}${token.deleted ? ' (deleted)' : ''}`,
    values: token.values,
  }));
  return { timestamps: report.timestamps, bucket: range.period, series: topSeries(series) };
}

/** The busiest series by name; the rest add up into "Other" so the chart stays readable. */
export function topSeries(series: readonly ChartSeries[]): ChartSeries[] {
  const sorted = [...series].sort((a, b) => total(b.values) - total(a.values));
  if (sorted.length <= MAX_SERIES) return sorted;
  const head = sorted.slice(0, MAX_SERIES - 1);
  const rest = sorted.slice(MAX_SERIES - 1);
  const values =
    rest[0]?.values.map((_, index) => rest.reduce((sum, s) => sum + (s.values[index] ?? 0), 0)) ?? [];
  return [...head, { name: `Other (${rest.length})`, values }];
}

function total(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}

function readQuery(c: DashboardContext, now: number): StatisticsQuery {
  const period = c.req.query('period');
  const choice: PeriodChoice =
    period === 'custom' || (period !== undefined && period in PRESETS) ? (period as PeriodChoice) : '24h';
  const group: GroupChoice = c.req.query('group') === 'service' ? 'service' : 'token';
  const today = new Date(now).toISOString().slice(0, 10);
  const monthAgo = new Date(now - 29 * DAY_MS).toISOString().slice(0, 10);
  return { choice, group, from: c.req.query('from') || monthAgo, to: c.req.query('to') || today };
}

/** The usage request for the choice; a message when a custom range is unusable. */
export function toRange(query: StatisticsQuery, now: number): Range | string {
  if (query.choice !== 'custom') {
    const preset = PRESETS[query.choice];
    const size = preset.period === 'hour' ? 3_600_000 : DAY_MS;
    const end = (Math.floor(now / size) + 1) * size;
    return { period: preset.period, start: end - preset.span, end };
  }
  const start = parseDate(query.from);
  const end = parseDate(query.to);
  if (start === undefined || end === undefined) return 'Enter both dates as YYYY-MM-DD.';
  if (end < start) return 'The end date must not be before the start date.';
  if (end - start > 365 * DAY_MS) return 'A custom range may span at most 366 days.';
  return { period: 'day', start, end: end + DAY_MS };
}

function parseDate(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const time = Date.parse(`${text}T00:00:00Z`);
  return Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== text ? undefined : time;
}

function render(
  kit: Kit,
  c: DashboardContext,
  query: StatisticsQuery,
  loaded: Loaded | undefined,
  notice?: Notice,
  status = 200,
): Response {
  const context = kit.page(c, 'statistics');
  const body = html`<h1>Statistics</h1>
${periodForm(context, query)}
${loaded ? results(query, loaded) : ''}` as Markup;
  return kit.html(c, page(context, { title: 'Statistics', body, notice }), status);
}

function periodForm(context: PageContext, query: StatisticsQuery): Markup {
  const options = [
    ...Object.entries(PRESETS).map(([value, preset]) => [value, preset.label]),
    ['custom', 'Custom range'],
  ];
  return html`<form method="get" action="${context.base}/account/statistics" class="filters">
<div class="field">
<label for="period">Period</label>
<select id="period" name="period">${options.map(([value, label]) => html`<option value="${value}"${value === query.choice ? html` selected` : ''}>${label}</option>`)}</select>
</div>
<div class="field">
<label for="from">From</label>
<input id="from" name="from" type="date" value="${query.from}">
</div>
<div class="field">
<label for="to">To</label>
<input id="to" name="to" type="date" value="${query.to}">
</div>
<div class="field">
<label for="group">Requests per</label>
<select id="group" name="group">
<option value="token"${query.group === 'token' ? html` selected` : ''}>Token</option>
<option value="service"${query.group === 'service' ? html` selected` : ''}>Service</option>
</select>
</div>
<button type="submit" class="button primary">Show</button>
<p class="hint">From and To apply to a custom range (UTC days).</p>
</form>` as Markup;
}

function results(query: StatisticsQuery, loaded: Loaded): Markup {
  const noun = query.group === 'token' ? 'token' : 'service';
  const first = loaded.timestamps[0]?.slice(0, 10) ?? '';
  const last = loaded.timestamps.at(-1)?.slice(0, 10) ?? '';
  const sum = loaded.series.reduce((acc, series) => acc + total(series.values), 0);
  const chart = renderChart({
    id: `usage-by-${noun}`,
    title: `Requests per ${noun}`,
    description: `Allowed requests per ${noun}, per ${loaded.bucket}, ${first} to ${last} (UTC). ${sum} in all.`,
    timestamps: loaded.timestamps,
    bucket: loaded.bucket,
    series: loaded.series,
  });
  return html`<section class="card" aria-labelledby="chart-heading">
<h2 id="chart-heading">Requests per ${noun}</h2>
<p class="meta">${sum.toLocaleString('en-US')} allowed requests, ${first} to ${last} (UTC).</p>
${chart}
</section>
${dataTable(noun, loaded)}` as Markup;
}

function dataTable(noun: string, loaded: Loaded): Markup {
  const label = (iso: string) =>
    loaded.bucket === 'hour' ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
  const head = loaded.series.map((series) => html`<th scope="col">${series.name}</th>`);
  const rows = loaded.timestamps.map(
    (iso, index) =>
      html`<tr><th scope="row"><time datetime="${iso}">${label(iso)}</time></th>${loaded.series.map((series) => html`<td class="number">${(series.values[index] ?? 0).toLocaleString('en-US')}</td>`)}</tr>`,
  );
  const totals = loaded.series.map(
    (series) => html`<td class="number">${total(series.values).toLocaleString('en-US')}</td>`,
  );
  return html`<section class="card" aria-labelledby="table-heading">
<h2 id="table-heading">The numbers</h2>
${
  loaded.series.length === 0
    ? html`<p class="muted">No requests in this period.</p>`
    : html`<div class="table-wrap"><table class="data">
<caption class="visually-hidden">Allowed requests per ${noun} and ${loaded.bucket} (UTC)</caption>
<thead><tr><th scope="col">${loaded.bucket === 'hour' ? 'Hour' : 'Day'} (UTC)</th>${head}</tr></thead>
<tbody>${rows}</tbody>
<tfoot><tr><th scope="row">Total</th>${totals}</tr></tfoot>
</table></div>`
}
</section>` as Markup;
}
