import type { Hono } from 'hono';
import { isTesseraError } from '../core/errors.ts';
import type { TokenMetadata } from '../core/tokens.ts';
import { type DashboardContext, type DashboardEnv, type Kit, requireConfirmation } from './kit.ts';
import { DEFAULT_GRACE_PERIOD, GRACE_PERIODS, rotatePage, unrotatablePage } from './rotate-pages.ts';
import { rotationBlocker } from './token-lifecycle.ts';
import { timeText } from './view.ts';

/**
 * Rotation: a new token with the same settings, shown once like a created one, while the old one
 * keeps working for the chosen grace period. Any token may be rotated, the default one included.
 */
export function rotateRoutes(app: Hono<DashboardEnv>, kit: Kit): void {
  app.get('/account/tokens/:id/rotate', async (c) => {
    const token = await tokenOf(kit, c);
    const refusal = await refuse(kit, c, token, 'rotate');
    if (refusal) return refusal;
    return kit.html(c, rotatePage(kit.page(c, 'tokens'), { token, gracePeriod: DEFAULT_GRACE_PERIOD }));
  });

  app.post('/account/tokens/:id/rotate', async (c) => {
    const token = await tokenOf(kit, c);
    const refusal = await refuse(kit, c, token, 'rotate');
    if (refusal) return refusal;
    const gracePeriod = readGracePeriod(kit.form(c).get('gracePeriod'));
    const again = (text: string, chosen: number | undefined) =>
      kit.html(
        c,
        rotatePage(kit.page(c, 'tokens'), { token, gracePeriod: chosen, notice: { kind: 'error', text } }),
        422,
      );
    if (gracePeriod === undefined) return again('Choose a grace period.', undefined);
    const what = token.default
      ? 'rotate your default public token'
      : `rotate the token “${token.note || 'Unnamed'}”`;
    const gate = await requireConfirmation(kit, c, what);
    if (!gate.confirmed) return gate.response;
    const username = kit.session(c).record.username;
    const origin = { ip: kit.options.clientAddress(c) };
    let rotated: TokenMetadata;
    try {
      rotated = await kit.services.tokens.rotate(
        kit.authorizer(c),
        username,
        token.id,
        { gracePeriod },
        origin,
      );
    } catch (error) {
      // Rotated or changed by someone else since the page was shown: say so on the same page.
      if (!isTesseraError(error) || (error.status !== 409 && error.status !== 422)) throw error;
      return again(sentence(error.message), gracePeriod);
    }
    await kit.sessions.setFlash(kit.session(c), {
      notice: rotatedNotice(token, rotated),
      reveal: { id: rotated.id, token: rotated.token ?? '', usage: rotated.usage },
    });
    return kit.redirect(c, '/account');
  });
}

async function tokenOf(kit: Kit, c: DashboardContext): Promise<TokenMetadata> {
  const id = c.req.param('id') ?? '';
  return kit.services.tokens.get(kit.authorizer(c), kit.session(c).record.username, id);
}

/**
 * The page that explains why a token cannot be rotated (or, from the edit routes, changed), with
 * 422 like the API's refusal; undefined when it can be.
 */
export async function refuse(
  kit: Kit,
  c: DashboardContext,
  token: TokenMetadata,
  action: 'rotate' | 'edit',
): Promise<Response | undefined> {
  const reason = rotationBlocker(token, kit.services.clock.now());
  if (reason === undefined || (action === 'edit' && reason === 'expired')) return undefined;
  const replacement = token.rotatedTo ? await liveToken(kit, c, token.rotatedTo) : undefined;
  const view = { token, reason, action, ...(replacement ? { replacement } : {}) };
  return kit.html(c, unrotatablePage(kit.page(c, 'tokens'), view), 422);
}

async function liveToken(kit: Kit, c: DashboardContext, id: string): Promise<TokenMetadata | undefined> {
  try {
    return await kit.services.tokens.get(kit.authorizer(c), kit.session(c).record.username, id);
  } catch (error) {
    if (isTesseraError(error) && error.status === 404) return undefined;
    throw error;
  }
}

/** Only the offered choices: the form has no other. */
function readGracePeriod(text: string): number | undefined {
  return GRACE_PERIODS.find((choice) => String(choice.seconds) === text)?.seconds;
}

function rotatedNotice(old: TokenMetadata, fresh: TokenMetadata): string {
  const what = old.default ? 'Default public token rotated.' : `Token “${old.note || 'Unnamed'}” rotated.`;
  const until = fresh.graceUntil;
  if (until === undefined || Date.parse(until) <= Date.parse(fresh.created))
    return `${what} The old token no longer works anywhere.`;
  return `${what} The old token keeps working until ${timeText(until)}, then it is refused everywhere.`;
}

function sentence(text: string): string {
  const capitalised = text.charAt(0).toUpperCase() + text.slice(1);
  return capitalised.endsWith('.') ? capitalised : `${capitalised}.`;
}
