import { html } from 'hono/html';
import type { AuditEvent } from '../core/audit.ts';
import {
  describeAction,
  describeActor,
  describeChannel,
  type TokenLabels,
  tokenWords,
} from './audit-words.ts';
import { type Markup, type Notice, type PageContext, page, time } from './view.ts';

export interface AuditView {
  readonly events: readonly AuditEvent[];
  readonly labels: TokenLabels;
  /** Where the next (older) page starts, when there is one. */
  readonly next?: string;
  /** This page is not the newest one. */
  readonly older: boolean;
  readonly notice?: Notice;
}

/** The account's audit log, newest first, a page at a time, with both downloads. */
export function auditPage(context: PageContext, view: AuditView): Markup {
  const base = `${context.base}/account/audit`;
  const body = html`<div class="page-heading">
<h1>Activity</h1>
<ul class="plain downloads" aria-label="Download the whole log">
<li><a class="button secondary" href="${base}/export.csv" download>Download CSV</a></li>
<li><a class="button secondary" href="${base}/export.json" download>Download JSON</a></li>
</ul>
</div>
<p class="muted">Every change to your account and its tokens, newest first: what happened, who did it, through which channel and from which address. Times are UTC. Tokens are never recorded, only their names and ids.</p>
${view.events.length === 0 ? html`<p class="card">${view.older ? 'No older events.' : 'Nothing has happened yet.'}</p>` : eventTable(context, view)}
${pager(base, view)}` as Markup;
  return page({ ...context, section: 'activity' }, { title: 'Activity', body, notice: view.notice });
}

function pager(base: string, view: AuditView): Markup | '' {
  if (!view.next && !view.older) return '';
  const older = view.next ? html`<a href="${base}?start=${view.next}" rel="next">Older events</a>` : '';
  const newest = view.older ? html`<a href="${base}">Newest events</a>` : '';
  return html`<nav class="pager" aria-label="Audit log pages">${newest}${older}</nav>` as Markup;
}

function eventTable(context: PageContext, view: AuditView): Markup {
  const rows = view.events.map((event) => eventRow(context, event, view.labels));
  return html`<div class="table-wrap audit-wrap"><table class="audit">
<caption class="visually-hidden">Audit log, newest first</caption>
<thead><tr><th scope="col">Time (UTC)</th><th scope="col">Action</th><th scope="col">Who</th><th scope="col">Channel</th><th scope="col">Address</th><th scope="col">Token or account</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>` as Markup;
}

function eventRow(context: PageContext, event: AuditEvent, labels: TokenLabels): Markup {
  const who =
    context.username !== undefined && event.actor === `user:${context.username}`
      ? html`You <span class="muted">(${context.username})</span>`
      : describeActor(event.actor, labels);
  return html`<tr>
<th scope="row">${time(event.time)}</th>
<td data-label="Action">${describeAction(event)}</td>
<td data-label="Who">${who}</td>
<td data-label="Channel">${describeChannel(event.channel)}</td>
<td data-label="Address">${event.ip ? html`<code class="ip">${event.ip}</code>` : html`<span class="muted">None</span>`}</td>
<td data-label="Target">${target(context, event, labels)}</td>
</tr>` as Markup;
}

function target(context: PageContext, event: AuditEvent, labels: TokenLabels): Markup {
  if (event.target === context.username) return html`Your account` as Markup;
  const label = labels.get(event.target);
  const name = label ? tokenWords(event.target, labels) : 'Token';
  return html`<span class="token-label">${name}</span> <code class="id">${event.target}</code>` as Markup;
}
