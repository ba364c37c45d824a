import { html } from 'hono/html';
import type { Scope } from '../core/scopes.ts';
import type { TokenMetadata } from '../core/tokens.ts';
import type { Flash } from '../services/session-service.ts';
import { type LifecycleContext, lifecycleNotes, rotationBlocker } from './token-lifecycle.ts';
import { copyable, formTokenField, type Markup, type Notice, type PageContext, page, time } from './view.ts';

export interface TokensView {
  readonly defaultToken: TokenMetadata | undefined;
  readonly tokens: readonly TokenMetadata[];
  readonly flash: Flash | undefined;
  readonly nextPage?: string;
  /** The clock's time, to tell what has expired. */
  readonly now: number;
}

export function tokensPage(context: PageContext, view: TokensView): Markup {
  const shown = view.defaultToken ? [view.defaultToken, ...view.tokens] : view.tokens;
  const lifecycle: LifecycleContext = {
    now: view.now,
    tokens: new Map(shown.map((token) => [token.id, token])),
  };
  const body = html`<div class="page-heading">
<h1>Access tokens</h1>
<a class="button primary" href="${context.base}/account/tokens/new">Create a token</a>
</div>
${view.flash?.reveal ? reveal(view.flash.reveal) : ''}
${view.defaultToken ? defaultTokenCard(context, view.defaultToken, lifecycle) : ''}
<section aria-labelledby="tokens-heading">
<h2 id="tokens-heading">Your tokens</h2>
${view.tokens.length === 0 ? html`<p class="muted">No other tokens yet.</p>` : tokenTable(context, view.tokens, lifecycle)}
${view.nextPage ? html`<p><a href="${context.base}/account?start=${view.nextPage}">More tokens</a></p>` : ''}
</section>` as Markup;
  const notice: Notice | undefined = view.flash?.notice
    ? { kind: 'success', text: view.flash.notice }
    : undefined;
  return page({ ...context, section: 'tokens' }, { title: 'Access tokens', body, notice });
}

function reveal(token: NonNullable<Flash['reveal']>): Markup {
  const warning =
    token.usage === 'sk'
      ? html`<p class="warning"><strong>This is your only chance to copy this secret token.</strong> Tessera keeps only a hash of it: once you leave this page it cannot be shown again. Store it somewhere safe, such as a secrets manager.</p>`
      : html`<p>This public token is also listed below, whenever you need it again.</p>`;
  return html`<section class="card reveal" aria-labelledby="reveal-heading">
<h2 id="reveal-heading">Your new token</h2>
${warning}
${copyable('new-token', token.token, 'New token')}
</section>` as Markup;
}

function defaultTokenCard(context: PageContext, token: TokenMetadata, lifecycle: LifecycleContext): Markup {
  return html`<section class="card" id="default-token-card" aria-labelledby="default-heading">
<div class="card-heading">
<h2 id="default-heading">Default public token</h2>
${tokenMenu(context, token, lifecycle.now)}
</div>
<p class="muted">Safe to use in a browser or app. It holds every public scope and cannot be deleted, only refreshed or rotated.</p>
${copyable('default-token', token.token ?? '', 'Default public token')}
${lifecycleNotes(token, lifecycle)}
<p class="meta">Last used: ${time(token.lastUsed)} · Created: ${time(token.created)}</p>
</section>` as Markup;
}

function tokenTable(
  context: PageContext,
  tokens: readonly TokenMetadata[],
  lifecycle: LifecycleContext,
): Markup {
  const rows = tokens.map((token) => tokenRow(context, token, lifecycle));
  return html`<div class="table-wrap tokens-wrap"><table class="tokens">
<thead><tr><th scope="col">Name</th><th scope="col">Token</th><th scope="col">Scopes</th><th scope="col">Allowed URLs</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${rows}</tbody>
</table></div>` as Markup;
}

function tokenRow(context: PageContext, token: TokenMetadata, lifecycle: LifecycleContext): Markup {
  const value =
    token.usage === 'pk' && token.token
      ? copyable(`token-${token.id}`, token.token, `Token ${token.note}`)
      : html`<span class="muted">Shown only when it was created</span>`;
  const urls = token.allowedUrls?.length
    ? html`<ul class="plain">${token.allowedUrls.map((url) => html`<li><code>${url}</code></li>`)}</ul>`
    : html`<span class="muted">Any</span>`;
  return html`<tr id="row-${token.id}">
<th scope="row" class="token-name">${token.note || html`<span class="muted">Unnamed</span>`}<span class="badge ${token.usage}">${token.usage === 'pk' ? 'Public' : 'Secret'}</span></th>
<td>${value}${lifecycleNotes(token, lifecycle)}</td>
<td><ul class="plain scopes">${token.scopes.map((scope) => html`<li><code>${scope}</code></li>`)}</ul></td>
<td>${urls}</td>
<td>${time(token.lastUsed)}</td>
<td>${tokenMenu(context, token, lifecycle.now)}</td>
</tr>` as Markup;
}

/**
 * The menu next to each token: a disclosure that works without JavaScript. A replaced token can
 * only be deleted (its replacement is the one to change); an expired one cannot be rotated.
 */
function tokenMenu(context: PageContext, token: TokenMetadata, now: number): Markup {
  const base = `${context.base}/account/tokens/${token.id}`;
  const blocker = rotationBlocker(token, now);
  const rotate = blocker
    ? html`<li class="menu-note">${blocker === 'rotated' ? 'Replaced: edit or rotate its replacement' : 'Expired: cannot be rotated'}</li>`
    : html`<li><a href="${base}/rotate">Rotate</a></li>`;
  const items = token.default
    ? html`<li><a href="${base}/refresh">Refresh</a></li>${rotate}`
    : html`${blocker === 'rotated' ? '' : html`<li><a href="${base}/edit">Edit</a></li>`}${rotate}<li><a href="${base}/delete">Delete</a></li>`;
  const suffix = blocker === 'rotated' ? ' (replaced)' : '';
  const name = token.default ? 'default public token' : `token ${token.note || token.id}${suffix}`;
  return html`<details class="menu">
<summary>Menu<span class="visually-hidden"> for ${name}</span></summary>
<ul>${items}</ul>
</details>` as Markup;
}

export interface TokenFormView {
  readonly mode: 'create' | 'edit';
  readonly action: string;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly allowedUrls: readonly string[];
  /** The Expires field's text: what was sent, or the token's expiry to the minute. */
  readonly expiresAt: string;
  readonly catalogue: readonly Scope[];
  /** Editing a public token: secret scopes cannot be added to it. */
  readonly publicOnly: boolean;
  readonly notice?: Notice;
  /** The field the error is about, marked invalid. */
  readonly invalid?: 'expiresAt';
}

export function tokenFormPage(context: PageContext, view: TokenFormView): Markup {
  const title = view.mode === 'create' ? 'Create an access token' : 'Edit access token';
  const body = html`<section class="card">
<h1>${title}</h1>
<form method="post" action="${view.action}" class="stack">
${formTokenField(context)}
<div class="field">
<label for="note">Token name</label>
<input id="note" name="note" type="text" maxlength="256" value="${view.note}" aria-describedby="note-hint">
<p id="note-hint" class="hint">A name to recognise the token by, such as the app that uses it.</p>
</div>
${scopeGroup('Public scopes', 'public', view, false)}
${scopeGroup('Secret scopes', 'secret', view, view.publicOnly)}
<div class="field">
<label for="allowed-urls">Allowed URLs</label>
<textarea id="allowed-urls" name="allowedUrls" rows="4" spellcheck="false" aria-describedby="urls-hint">${view.allowedUrls.join('\n')}</textarea>
<p id="urls-hint" class="hint">One per line, such as <code>https://example.com</code> or <code>https://example.com/maps</code>. Browsers on other sites are refused. Leave empty to allow any URL. This is not a secret: it keeps your public token from being reused on other websites, not from other programs.</p>
</div>
${expiryField(view)}
<div class="actions">
<button type="submit" class="button primary">${view.mode === 'create' ? 'Create token' : 'Update token'}</button>
<a class="button secondary" href="${context.base}/account">Cancel</a>
</div>
</form>
</section>` as Markup;
  return page({ ...context, section: 'tokens' }, { title, body, notice: view.notice });
}

function scopeGroup(
  legend: string,
  kind: 'public' | 'secret',
  view: TokenFormView,
  disabled: boolean,
): Markup {
  const scopes = view.catalogue.filter((scope) => scope.public === (kind === 'public'));
  const hint =
    kind === 'secret'
      ? disabled
        ? 'A public token cannot hold secret scopes. Create a new token for them.'
        : 'Any secret scope makes this a secret token (sk), shown only once.'
      : 'Public scopes are safe in a browser.';
  const items = scopes.map((scope) => {
    const id = `scope-${scope.id.replace(/[^a-z0-9]/g, '-')}`;
    const checked = view.scopes.includes(scope.id) ? html` checked` : '';
    return html`<li class="scope">
<input id="${id}" type="checkbox" name="scopes" value="${scope.id}"${checked}${disabled ? html` disabled` : ''} aria-describedby="${id}-description">
<label for="${id}"><code>${scope.id}</code></label>
<span id="${id}-description" class="hint">${scope.description}</span>
</li>`;
  });
  return html`<fieldset class="scopes">
<legend>${legend}</legend>
<p class="hint">${hint}</p>
<ul class="plain">${items}</ul>
</fieldset>` as Markup;
}

function expiryField(view: TokenFormView): Markup {
  const invalid = view.invalid === 'expiresAt' ? html` aria-invalid="true"` : '';
  return html`<div class="field">
<label for="expires-at">Expires (UTC)</label>
<input id="expires-at" name="expiresAt" type="datetime-local" value="${view.expiresAt}"${invalid} aria-describedby="expires-hint">
<p id="expires-hint" class="hint">Optional. A date and time in UTC, not your local time, such as <code>2027-12-31T23:59</code>. From then on the token is refused everywhere. Leave empty for a token that does not expire${view.mode === 'edit' ? ', or empty the field to remove its expiry' : ''}.</p>
</div>` as Markup;
}
