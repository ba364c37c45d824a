import { html } from 'hono/html';
import type { TokenMetadata } from '../core/tokens.ts';
import { MAX_PASSWORD_LENGTH } from '../services/passwords.ts';
import { formTokenField, type Markup, type Notice, type PageContext, page, time } from './view.ts';

export interface PasswordConfirmView {
  /** What the password unlocks, e.g. 'create the token “Maps”'. */
  readonly purpose: string;
  readonly action: string;
  /** The fields of the form being confirmed, carried through unchanged. */
  readonly carried: readonly (readonly [string, string])[];
  readonly notice?: Notice;
}

/** Asked before a token is created, changed, deleted or refreshed, unless a confirmation is recent. */
export function passwordConfirmPage(context: PageContext, view: PasswordConfirmView): Markup {
  const hidden = view.carried.map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  );
  const body = html`<section class="card narrow">
<h1>Confirm your password</h1>
<p>Enter your password to ${view.purpose}. You will not be asked again for a few minutes.</p>
<form method="post" action="${view.action}" class="stack">
${formTokenField(context)}
${hidden}
<div class="field">
<label for="confirm-password">Password</label>
<input id="confirm-password" name="password" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}" autofocus>
</div>
<div class="actions">
<button type="submit" class="button primary">Confirm</button>
<a class="button secondary" href="${context.base}/account">Cancel</a>
</div>
</form>
</section>` as Markup;
  return page(
    { ...context, section: 'tokens' },
    { title: 'Confirm your password', body, notice: view.notice },
  );
}

export interface RecentUsage {
  readonly days: number;
  readonly total: number;
  readonly services: readonly (readonly [string, number])[];
}

export interface RevokeView {
  readonly kind: 'delete' | 'refresh';
  readonly token: TokenMetadata;
  readonly usage: RecentUsage;
}

/** The screen before a token is deleted or refreshed: what it is and how it has been used. */
export function revokePage(context: PageContext, view: RevokeView): Markup {
  const { token } = view;
  const deleting = view.kind === 'delete';
  const title = deleting ? 'Delete token' : 'Refresh default public token';
  const consequence = deleting
    ? 'Deleting this token is permanent. Every application that uses it stops working at once.'
    : 'Refreshing replaces this token with a new one. The current token stops working everywhere at once; update the applications that use it.';
  const body = html`<section class="card">
<h1>${title}</h1>
<p class="warning">${consequence}</p>
<dl class="details">
<dt>Name</dt><dd>${token.note || html`<span class="muted">Unnamed</span>`}</dd>
<dt>Type</dt><dd>${token.usage === 'pk' ? 'Public token (pk)' : 'Secret token (sk)'}</dd>
<dt>Scopes</dt><dd>${token.scopes.map((scope) => html`<code>${scope}</code> `)}</dd>
<dt>Allowed URLs</dt><dd>${token.allowedUrls?.length ? token.allowedUrls.map((url) => html`<code>${url}</code> `) : 'Any'}</dd>
<dt>Created</dt><dd>${time(token.created)}</dd>
<dt>Last used</dt><dd>${time(token.lastUsed)}</dd>
</dl>
${usageSummary(view.usage)}
<form method="post" action="${context.base}/account/tokens/${token.id}/${view.kind}" class="actions">
${formTokenField(context)}
<button type="submit" class="button danger">${deleting ? 'Yes, delete token' : 'Yes, refresh token'}</button>
<a class="button secondary" href="${context.base}/account">Cancel</a>
</form>
</section>` as Markup;
  return page({ ...context, section: 'tokens' }, { title, body });
}

function usageSummary(usage: RecentUsage): Markup {
  const heading = html`<h2>Recent use</h2>`;
  if (usage.total === 0) {
    return html`${heading}<p>No requests in the last ${usage.days} days.</p>` as Markup;
  }
  const rows = usage.services.map(
    ([service, count]) =>
      html`<tr><th scope="row">${service}</th><td class="number">${count.toLocaleString('en-US')}</td></tr>`,
  );
  return html`${heading}
<p>${usage.total.toLocaleString('en-US')} requests in the last ${usage.days} days.</p>
<table class="compact"><caption class="visually-hidden">Requests per service in the last ${usage.days} days</caption>
<thead><tr><th scope="col">Service</th><th scope="col">Requests</th></tr></thead>
<tbody>${rows}</tbody></table>` as Markup;
}
