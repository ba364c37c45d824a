import type { Hono } from 'hono';
import { TesseraError } from '../core/errors.ts';
import { planCreate, planUpdate } from '../core/token-policy.ts';
import type { TokenMetadata } from '../core/tokens.ts';
import { parseCreateBody, parseUpdateBody } from '../http/token-bodies.ts';
import { type RecentUsage, revokePage } from './confirm-pages.ts';
import { type ExpiryField, expiryChange, expiryFieldValue, parseExpiryField } from './expiry.ts';
import { type DashboardContext, type DashboardEnv, type Kit, requireConfirmation } from './kit.ts';
import { refuse } from './rotate-routes.ts';
import {
  changedFields,
  type FormError,
  formView,
  readTokenForm,
  recordShape,
  refusedOnForm,
  urlsField,
  validationFailure,
} from './token-form.ts';
import { tokenFormPage, tokensPage } from './token-pages.ts';

const RECENT_DAYS = 30;

/** The tokens page and the flows that create, edit, delete and refresh tokens. */
export function tokenRoutes(app: Hono<DashboardEnv>, kit: Kit): void {
  const { services, sessions } = kit;
  const { tokens } = services;
  const usernameOf = (c: DashboardContext) => kit.session(c).record.username;
  const originOf = (c: DashboardContext) => ({ ip: kit.options.clientAddress(c) });

  app.get('/account', async (c) => {
    const authorizer = kit.authorizer(c);
    const username = usernameOf(c);
    const start = c.req.query('start');
    const [defaults, page, flash] = await Promise.all([
      tokens.list(authorizer, username, { isDefault: true, sortBy: 'created', limit: 1 }),
      tokens.list(authorizer, username, {
        isDefault: false,
        sortBy: 'created',
        limit: 50,
        ...(start ? { start } : {}),
      }),
      // A HEAD request or a prefetch must not use up a one-time message (it may hold a secret token).
      isNavigation(c) ? sessions.takeFlash(kit.session(c)) : undefined,
    ]);
    const view = {
      defaultToken: defaults.tokens[0],
      tokens: page.tokens,
      flash,
      now: services.clock.now(),
      ...(page.next ? { nextPage: page.next } : {}),
    };
    return kit.html(c, tokensPage(kit.page(c), view));
  });

  app.get('/account/tokens/new', (c) =>
    kit.html(
      c,
      tokenFormPage(
        kit.page(c),
        formView(kit, { mode: 'create', note: '', scopes: [], allowedUrls: [], expiresAt: '' }),
      ),
    ),
  );

  app.post('/account/tokens', async (c) => {
    const fields = readTokenForm(kit, c);
    const rerender = (error: FormError) =>
      kit.html(c, tokenFormPage(kit.page(c), formView(kit, { mode: 'create', ...fields, error })), 422);
    const expiry = parseExpiryField(fields.expiresAt);
    if (!expiry.ok) return rerender({ message: expiry.message, field: 'expiresAt' });
    let request: ReturnType<typeof parseCreateBody>;
    try {
      request = parseCreateBody({
        note: fields.note,
        scopes: fields.scopes,
        ...urlsField(fields.allowedUrls),
        ...(expiry.value ? { expiresAt: expiry.value } : {}),
      });
      planCreate(request, {
        authorizer: kit.authorizer(c),
        catalogue: services.catalogue,
        now: services.clock.now(),
      });
    } catch (error) {
      return validationFailure(error, rerender);
    }
    const gate = await requireConfirmation(kit, c, `create the token “${fields.note || 'Unnamed'}”`);
    if (!gate.confirmed) return gate.response;
    const created = await refusedOnForm(
      () => tokens.create(kit.authorizer(c), usernameOf(c), request, originOf(c)),
      rerender,
    );
    if (created instanceof Response) return created;
    await sessions.setFlash(kit.session(c), {
      notice: `Token “${created.note || 'Unnamed'}” created.`,
      reveal: { id: created.id, token: created.token ?? '', usage: created.usage },
    });
    return kit.redirect(c, '/account');
  });

  app.get('/account/tokens/:id/edit', async (c) => {
    const token = await tokens.get(kit.authorizer(c), usernameOf(c), c.req.param('id'));
    if (token.default) return kit.redirect(c, `/account/tokens/${token.id}/refresh`);
    const refusal = await refuse(kit, c, token, 'edit');
    if (refusal) return refusal;
    const fields = {
      note: token.note,
      scopes: token.scopes,
      allowedUrls: token.allowedUrls ?? [],
      expiresAt: expiryFieldValue(token.expiresAt),
    };
    return kit.html(c, tokenFormPage(kit.page(c), formView(kit, { mode: 'edit', token, ...fields })));
  });

  app.post('/account/tokens/:id/edit', async (c) => {
    const token = await tokens.get(kit.authorizer(c), usernameOf(c), c.req.param('id'));
    if (token.default) throw new TesseraError('forbidden', 'the default token can only be refreshed');
    const refusal = await refuse(kit, c, token, 'edit');
    if (refusal) return refusal;
    const fields = readTokenForm(kit, c);
    const rerender = (error: FormError) =>
      kit.html(c, tokenFormPage(kit.page(c), formView(kit, { mode: 'edit', token, ...fields, error })), 422);
    const expiry: ExpiryField | undefined = expiryChange(fields.expiresAt, token.expiresAt);
    if (expiry && !expiry.ok) return rerender({ message: expiry.message, field: 'expiresAt' });
    let request: ReturnType<typeof parseUpdateBody>;
    try {
      request = parseUpdateBody({
        ...changedFields(token, fields),
        ...(expiry?.ok ? { expiresAt: expiry.value } : {}),
      });
      const record = { ...recordShape(token), isDefault: false };
      planUpdate(record, request, {
        authorizer: kit.authorizer(c),
        catalogue: services.catalogue,
        now: services.clock.now(),
      });
    } catch (error) {
      return validationFailure(error, rerender);
    }
    const gate = await requireConfirmation(kit, c, `update the token “${token.note || 'Unnamed'}”`);
    if (!gate.confirmed) return gate.response;
    const updated = await refusedOnForm(
      () => tokens.update(kit.authorizer(c), usernameOf(c), token.id, request, originOf(c)),
      rerender,
    );
    if (updated instanceof Response) return updated;
    await sessions.setFlash(kit.session(c), { notice: `Token “${updated.note || 'Unnamed'}” updated.` });
    return kit.redirect(c, '/account');
  });

  for (const kind of ['delete', 'refresh'] as const) {
    app.get(`/account/tokens/:id/${kind}`, async (c) => {
      const token = await revocable(kit, c, kind);
      const usage = await recentUsage(kit, c, token.id);
      return kit.html(c, revokePage(kit.page(c, 'tokens'), { kind, token, usage }));
    });

    app.post(`/account/tokens/:id/${kind}`, async (c) => {
      const token = await revocable(kit, c, kind);
      const what =
        kind === 'delete'
          ? `delete the token “${token.note || 'Unnamed'}”`
          : 'refresh your default public token';
      const gate = await requireConfirmation(kit, c, what);
      if (!gate.confirmed) return gate.response;
      await tokens.remove(kit.authorizer(c), usernameOf(c), token.id, originOf(c));
      const notice =
        kind === 'delete'
          ? `Token “${token.note || 'Unnamed'}” deleted. It no longer works anywhere.`
          : 'Default public token refreshed. The old token no longer works anywhere.';
      await sessions.setFlash(kit.session(c), { notice });
      return kit.redirect(c, '/account');
    });
  }
}

function isNavigation(c: DashboardContext): boolean {
  return c.req.method === 'GET' && !(c.req.header('sec-purpose') ?? '').includes('prefetch');
}

async function revocable(kit: Kit, c: DashboardContext, kind: 'delete' | 'refresh'): Promise<TokenMetadata> {
  const token = await kit.services.tokens.get(
    kit.authorizer(c),
    kit.session(c).record.username,
    c.req.param('id') ?? '',
  );
  // Only the default token is refreshed, and it is never deleted: the same rule as the API's.
  if (token.default !== (kind === 'refresh')) throw new TesseraError('not_found');
  return token;
}

async function recentUsage(kit: Kit, c: DashboardContext, tokenId: string): Promise<RecentUsage> {
  const { services } = kit;
  const report = await services.usageReports.report(kit.authorizer(c), kit.session(c).record.username, {
    period: 'day',
    tokenId,
    start: services.clock.now() - RECENT_DAYS * 86_400_000,
  });
  const services_ = Object.entries(report.services)
    .map(([service, counts]) => [service, counts.reduce((sum, count) => sum + count, 0)] as const)
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = services_.reduce((sum, [, count]) => sum + count, 0);
  return { days: RECENT_DAYS, total, services: services_ };
}
