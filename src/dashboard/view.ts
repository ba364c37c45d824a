import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export type Markup = HtmlEscapedString;

/** What every page needs to know about where it is rendered. */
export interface PageContext {
  /** The path prefix of the public URL ('' at the root), put before every link. */
  readonly base: string;
  /** The signed-in user, if any. */
  readonly username?: string;
  /** The form token for this browser, put in every form that changes something. */
  readonly formToken: string;
  /** Which navigation entry is current. */
  readonly section?: 'tokens' | 'statistics' | 'activity' | 'password';
}

export interface PageOptions {
  readonly title: string;
  readonly body: Markup;
  readonly notice?: Notice | undefined;
}

export interface Notice {
  readonly kind: 'success' | 'error';
  readonly text: string;
}

/** The one page shell: a header with navigation, the notice, the content. */
export function page(context: PageContext, options: PageOptions): Markup {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · Tessera</title>
<link rel="stylesheet" href="${context.base}/assets/tessera.css">
<link rel="icon" href="${context.base}/assets/favicon.svg" type="image/svg+xml">
<script src="${context.base}/assets/tessera.js" defer></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
${header(context)}
<main id="main" class="page">
${options.notice ? notice(options.notice) : ''}
${options.body}
</main>
</body>
</html>` as Markup;
}

function header(context: PageContext): Markup {
  const brand = html`<a class="brand" href="${context.base}/">Tessera</a>`;
  if (context.username === undefined) return html`<header class="site">${brand}</header>` as Markup;
  return html`<header class="site">
${brand}
<nav aria-label="Account">
<ul>
${navLink(context, 'tokens', '/account', 'Tokens')}
${navLink(context, 'statistics', '/account/statistics', 'Statistics')}
${navLink(context, 'activity', '/account/audit', 'Activity')}
${navLink(context, 'password', '/account/password', 'Password')}
</ul>
</nav>
<form class="sign-out" method="post" action="${context.base}/signout">
${formTokenField(context)}
<span class="who">${context.username}</span>
<button type="submit" class="button secondary">Sign out</button>
</form>
</header>` as Markup;
}

function navLink(context: PageContext, section: PageContext['section'], path: string, label: string): Markup {
  const current = context.section === section ? html` aria-current="page"` : '';
  return html`<li><a href="${context.base}${path}"${current}>${label}</a></li>` as Markup;
}

export function notice(value: Notice): Markup {
  const role = value.kind === 'error' ? 'alert' : 'status';
  return html`<p class="notice ${value.kind}" role="${role}">${value.text}</p>` as Markup;
}

export function formTokenField(context: PageContext): Markup {
  return html`<input type="hidden" name="_csrf" value="${context.formToken}">` as Markup;
}

/** A value with a copy button; the button appears only when the script can make it work. */
export function copyable(id: string, value: string, label: string): Markup {
  return html`<div class="copyable">
<input id="${id}" class="token-value" type="text" readonly value="${value}" aria-label="${label}" spellcheck="false" autocomplete="off">
<button type="button" class="button secondary copy" data-copy="${id}" hidden>Copy</button>
</div>` as Markup;
}

/** ISO time as a short UTC text, with the machine-readable value beside it. */
export function time(iso: string | null | undefined, fallback = 'Never'): Markup {
  if (!iso) return html`<span class="muted">${fallback}</span>` as Markup;
  return html`<time datetime="${iso}">${timeText(iso)}</time>` as Markup;
}

/** ISO time as the pages write it: `2027-03-10 08:15 UTC`. */
export function timeText(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}
