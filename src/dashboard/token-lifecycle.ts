import { html } from 'hono/html';
import type { TokenMetadata } from '../core/tokens.ts';
import { type Markup, time } from './view.ts';

/** What the tokens page knows when it describes one token: the time, and the tokens it shows. */
export interface LifecycleContext {
  readonly now: number;
  /** Every token on the page by id, to name the other half of a rotation. */
  readonly tokens: ReadonlyMap<string, TokenMetadata>;
}

/** A token past its expiry (for a replaced token: past its grace period) is refused everywhere. */
export function hasExpired(token: TokenMetadata, now: number): boolean {
  return token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now;
}

/** Why a token cannot be rotated, or undefined when it can (the same rules as the API's). */
export function rotationBlocker(token: TokenMetadata, now: number): 'rotated' | 'expired' | undefined {
  if (token.rotatedTo) return 'rotated';
  return hasExpired(token, now) ? 'expired' : undefined;
}

/**
 * The lines under a token that say how long it works: its expiry, and either half of a rotation.
 * Plain sentences, so they read the same to a screen reader as on screen; colour only repeats them.
 */
export function lifecycleNotes(token: TokenMetadata, context: LifecycleContext): Markup | '' {
  const notes = [leakNote(token), rotationNote(token, context), expiryNote(token, context.now)].filter(
    (note): note is Markup => note !== undefined,
  );
  if (notes.length === 0) return '';
  return html`<ul class="plain lifecycle">${notes}</ul>` as Markup;
}

/** A public token reported as leaked keeps working; the owner should know, and can rotate it. */
function leakNote(token: TokenMetadata): Markup | undefined {
  if (token.leakedAt === undefined) return undefined;
  return html`<li class="expired">Reported as leaked ${time(token.leakedAt)}: it still works; rotate it if it is being abused.</li>` as Markup;
}

function rotationNote(token: TokenMetadata, context: LifecycleContext): Markup | undefined {
  const until = token.graceUntil;
  if (until === undefined) return undefined;
  const over = Date.parse(until) <= context.now;
  if (token.rotatedTo) {
    const partner = partnerName(token.rotatedTo, context);
    return over
      ? (html`<li class="expired">Replaced by ${partner}. Stopped working ${time(until)}.</li>` as Markup)
      : (html`<li class="rotating">Replaced by ${partner}: keeps working until ${time(until)}.</li>` as Markup);
  }
  if (token.rotatedFrom) {
    const partner = partnerName(token.rotatedFrom, context);
    return over
      ? (html`<li>Replaces ${partner} (the old token stopped working ${time(until)}).</li>` as Markup)
      : (html`<li class="rotating">Replaces ${partner} (old token works until ${time(until)}).</li>` as Markup);
  }
  return undefined;
}

function expiryNote(token: TokenMetadata, now: number): Markup | undefined {
  // A replaced token's expiry is its grace period's end, which the rotation note already gives.
  if (token.expiresAt === undefined || token.rotatedTo) return undefined;
  return hasExpired(token, now)
    ? (html`<li class="expired">Expired ${time(token.expiresAt)}</li>` as Markup)
    : (html`<li>Expires ${time(token.expiresAt)}</li>` as Markup);
}

/** The other token of a rotation, linked to where the page shows it; its id when it is not shown. */
function partnerName(id: string, context: LifecycleContext): Markup {
  const partner = context.tokens.get(id);
  if (!partner) return html`token <code>${id}</code>` as Markup;
  if (partner.default) return html`the <a href="#default-token-card">default public token</a>` as Markup;
  return html`<a href="#row-${id}">${tokenName(partner)}</a>` as Markup;
}

/** A token as sentences name it: “Maps site”, or its id when it has no name. */
export function tokenName(token: Pick<TokenMetadata, 'id' | 'note'>): Markup {
  return (token.note ? html`“${token.note}”` : html`token <code>${token.id}</code>`) as Markup;
}
