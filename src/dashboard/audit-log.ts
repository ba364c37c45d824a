import type { Hono } from 'hono';
import type { AuditEvent } from '../core/audit.ts';
import { isTesseraError } from '../core/errors.ts';
import { csvEvent, csvHeader, jsonEvent } from './audit-export.ts';
import { type AuditView, auditPage } from './audit-pages.ts';
import { type TokenLabel, type TokenLabels, tokenIdsOf } from './audit-words.ts';
import type { DashboardContext, DashboardEnv, Kit } from './kit.ts';

const PAGE_SIZE = 50;
const BAD_START = 'That page of the log does not exist. Here are the newest events.';

/** The account's audit log: a page of 50 events at a time, and the whole log as CSV or JSON. */
export function auditRoutes(app: Hono<DashboardEnv>, kit: Kit): void {
  app.get('/account/audit', async (c) => {
    const start = c.req.query('start');
    try {
      return kit.html(c, auditPage(kit.page(c, 'activity'), await loadPage(kit, c, start)));
    } catch (error) {
      // A mistyped or foreign `start` (the service refuses it with 422): the newest page instead.
      if (!isTesseraError(error) || error.status !== 422 || start === undefined) throw error;
      const view = {
        ...(await loadPage(kit, c, undefined)),
        notice: { kind: 'error', text: BAD_START },
      } as const;
      return kit.html(c, auditPage(kit.page(c, 'activity'), view), 422);
    }
  });

  app.get('/account/audit/export.csv', (c) =>
    download(kit, c, 'csv', async function* (events, labels) {
      yield csvHeader();
      for await (const event of events) {
        await labels.load([event]);
        yield csvEvent(event, labels.known);
      }
    }),
  );

  app.get('/account/audit/export.json', (c) =>
    download(kit, c, 'json', async function* (events) {
      yield '[\n';
      let first = true;
      for await (const event of events) {
        yield jsonEvent(event, first);
        first = false;
      }
      yield first ? ']\n' : '\n]\n';
    }),
  );
}

async function loadPage(kit: Kit, c: DashboardContext, start: string | undefined): Promise<AuditView> {
  const username = kit.session(c).record.username;
  const page = await kit.services.audit.list(kit.authorizer(c), username, {
    limit: PAGE_SIZE,
    ...(start ? { start } : {}),
  });
  const labels = tokenLabeller(kit, username);
  await labels.load(page.events);
  const view = { events: page.events, labels: labels.known, older: Boolean(start) };
  return page.next ? { ...view, next: page.next } : view;
}

const TYPES = { csv: 'text/csv; charset=utf-8; header=present', json: 'application/json; charset=utf-8' };

/**
 * The whole log as a file, streamed a page at a time. The first page is read before the answer
 * starts, so a refusal or a database error is an error page, not a cut-off download.
 */
async function download(
  kit: Kit,
  c: DashboardContext,
  format: 'csv' | 'json',
  lines: (events: AsyncIterable<AuditEvent>, labels: TokenLabeller) => AsyncGenerator<string>,
): Promise<Response> {
  const username = kit.session(c).record.username;
  const all = kit.services.audit.all(kit.authorizer(c), username);
  const first = await all.next();
  async function* events(): AsyncGenerator<AuditEvent> {
    if (first.done) return;
    yield first.value;
    yield* all;
  }
  const date = new Date(kit.services.clock.now()).toISOString().slice(0, 10);
  c.header('Content-Type', TYPES[format]);
  c.header('Content-Disposition', `attachment; filename="tessera-audit-${username}-${date}.${format}"`);
  return c.body(streamOf(lines(events(), tokenLabeller(kit, username)), kit));
}

function streamOf(chunks: AsyncGenerator<string>, kit: Kit): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    async pull(controller) {
      try {
        const { value, done } = await chunks.next();
        if (done) controller.close();
        else controller.enqueue(encoder.encode(value));
      } catch (error) {
        // The status line is gone already: all that is left is to cut the download short, and log it.
        kit.options.logger.error('audit log export failed', { error: String(error) });
        controller.error(error);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

interface TokenLabeller {
  readonly known: TokenLabels;
  /** Looks up the tokens these events name that it has not looked up yet. */
  load(events: readonly AuditEvent[]): Promise<void>;
}

/**
 * Names for the token ids the log mentions, deleted tokens included (the log outlives them): read
 * from the store, as the statistics' per-token names are. Only this account's tokens are named.
 */
function tokenLabeller(kit: Kit, username: string): TokenLabeller {
  const known = new Map<string, TokenLabel>();
  const looked = new Set<string>();
  async function describe(id: string): Promise<void> {
    looked.add(id);
    const record = await kit.services.store.findToken(id);
    if (record?.username === username)
      known.set(id, { note: record.note, deleted: record.deletedAt !== null });
  }
  return {
    known,
    async load(events) {
      const ids = new Set(events.flatMap(tokenIdsOf).filter((id) => !looked.has(id)));
      await Promise.all([...ids].map(describe));
    },
  };
}
