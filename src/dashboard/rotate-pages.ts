import { html } from 'hono/html';
import type { TokenMetadata } from '../core/tokens.ts';
import { tokenName } from './token-lifecycle.ts';
import { formTokenField, type Markup, type Notice, type PageContext, page, time } from './view.ts';

/** The grace periods the dashboard offers, in seconds (the API takes any from 0 to 7 days). */
export const GRACE_PERIODS: readonly { readonly seconds: number; readonly label: string }[] = [
  { seconds: 0, label: 'No grace period: the old token stops working now' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86_400, label: '1 day' },
  { seconds: 604_800, label: '7 days' },
];

export const DEFAULT_GRACE_PERIOD = 86_400;

export interface RotateView {
  readonly token: TokenMetadata;
  /** The grace period to show as chosen, in seconds. */
  readonly gracePeriod: number | undefined;
  readonly notice?: Notice;
}

/** The screen before a token is rotated: what happens, and how long the old token keeps working. */
export function rotatePage(context: PageContext, view: RotateView): Markup {
  const { token } = view;
  const title = token.default ? 'Rotate default public token' : 'Rotate token';
  const body = html`<section class="card">
<h1>${title}</h1>
<p>Rotating issues a new token with the same name, scopes, allowed URLs and expiry${token.default ? ', which becomes your default public token' : ''}. The current token keeps working for the grace period you choose, so you can move your applications to the new token, and is then refused everywhere.</p>
<p>${token.usage === 'sk' ? 'The new secret token is shown once, right after you confirm: have somewhere safe ready to keep it.' : 'The new token is shown right after you confirm, and stays listed on your tokens page.'}</p>
${tokenDetails(token)}
<form method="post" action="${context.base}/account/tokens/${token.id}/rotate" class="stack">
${formTokenField(context)}
${graceChoice(token, view.gracePeriod)}
<div class="actions">
<button type="submit" class="button primary">Yes, rotate token</button>
<a class="button secondary" href="${context.base}/account">Cancel</a>
</div>
</form>
</section>` as Markup;
  return page({ ...context, section: 'tokens' }, { title, body, notice: view.notice });
}

function graceChoice(token: TokenMetadata, chosen: number | undefined): Markup {
  const items = GRACE_PERIODS.map(({ seconds, label }) => {
    const checked = seconds === chosen ? html` checked` : '';
    return html`<li class="choice">
<input id="grace-${seconds}" type="radio" name="gracePeriod" value="${seconds}"${checked} required>
<label for="grace-${seconds}">${label}</label>
</li>`;
  });
  const expiry = token.expiresAt
    ? html` The token expires ${time(token.expiresAt)}: the grace period ends then at the latest.`
    : '';
  return html`<fieldset class="choices" aria-describedby="grace-hint">
<legend>Grace period</legend>
<p id="grace-hint" class="hint">How long the current token keeps working. If it may have leaked, choose no grace period.${expiry}</p>
<ul class="plain">${items}</ul>
</fieldset>` as Markup;
}

function tokenDetails(token: TokenMetadata): Markup {
  return html`<dl class="details">
<dt>Name</dt><dd>${token.note || html`<span class="muted">Unnamed</span>`}</dd>
<dt>Type</dt><dd>${token.usage === 'pk' ? 'Public token (pk)' : 'Secret token (sk)'}</dd>
<dt>Scopes</dt><dd>${token.scopes.map((scope) => html`<code>${scope}</code> `)}</dd>
<dt>Allowed URLs</dt><dd>${token.allowedUrls?.length ? token.allowedUrls.map((url) => html`<code>${url}</code> `) : 'Any'}</dd>
<dt>Expires</dt><dd>${time(token.expiresAt, 'Never')}</dd>
<dt>Last used</dt><dd>${time(token.lastUsed)}</dd>
</dl>` as Markup;
}

export interface UnrotatableView {
  readonly token: TokenMetadata;
  readonly reason: 'rotated' | 'expired';
  /** What was asked for: the explanation names it. */
  readonly action: 'rotate' | 'edit';
  /** The replacement of a rotated token, when it still exists. */
  readonly replacement?: TokenMetadata;
}

/** Why a replaced token is not rotated or edited again, or an expired one not rotated, and what to do instead. */
export function unrotatablePage(context: PageContext, view: UnrotatableView): Markup {
  const title = view.action === 'rotate' ? 'This token cannot be rotated' : 'This token cannot be changed';
  const { token } = view;
  const until = token.graceUntil ?? token.expiresAt;
  const text =
    view.reason === 'rotated'
      ? html`${tokenName(token)} was rotated already${until ? html`: it works until ${time(until)}, then it is refused everywhere` : ''}. Change or rotate its replacement instead; this token can only be deleted.`
      : html`${tokenName(token)} expired ${time(token.expiresAt)}. Edit it to give it a new expiry, or create a new token.`;
  const body = html`<section class="card narrow">
<h1>${title}</h1>
<p>${text}</p>
<div class="actions">${nextStep(context, view)}<a class="button secondary" href="${context.base}/account">Back to your tokens</a></div>
</section>` as Markup;
  return page({ ...context, section: 'tokens' }, { title, body });
}

function nextStep(context: PageContext, view: UnrotatableView): Markup | '' {
  const link = (id: string, path: string, label: string) =>
    html`<a class="button primary" href="${context.base}/account/tokens/${id}/${path}">${label}</a>` as Markup;
  if (view.reason === 'expired') return link(view.token.id, 'edit', 'Edit token');
  const replacement = view.replacement;
  if (!replacement) return '';
  if (view.action === 'rotate') return link(replacement.id, 'rotate', 'Rotate its replacement');
  return replacement.default ? '' : link(replacement.id, 'edit', 'Edit its replacement');
}
