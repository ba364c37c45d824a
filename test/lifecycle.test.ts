import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RETRY_DELAYS_S } from '../src/services/webhook-sender.ts';
import { openDatabase, parseDatabaseUrl } from '../src/storage/database.ts';
import { api, assertError } from './helpers/api.ts';
import {
  createTestAccount,
  ManualClock,
  startConfiguredServer,
  type TestAccount,
  type TestServer,
} from './helpers/server.ts';

const SECRET = 'a webhook secret of some length';
const LIMITS = { tokensApi: { limit: 100_000, interval: 60 } };
const DAY = 86_400_000;

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A receiver that records every POST and answers with whatever `status()` says at the time. */
class Receiver {
  readonly requests: Received[] = [];
  status: () => number = () => 204;
  hold = false;
  #server: Server | undefined;
  #held: Array<() => void> = [];
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const answer = () => res.writeHead(this.status()).end();
        if (this.hold) this.#held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}/hooks/tessera?capability=do-not-store-me`;
  }

  release(): void {
    for (const answer of this.#held.splice(0)) answer();
  }

  async close(): Promise<void> {
    this.release();
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  events(): Array<{ id: string; type: string; time: string; data: Record<string, unknown> }> {
    return this.requests.map((request) => JSON.parse(request.body));
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('webhooks', () => {
  const clock = new ManualClock();
  const receiver = new Receiver();
  const leaksOnly = new Receiver();
  let server: TestServer;
  let owner: TestAccount;

  before(async () => {
    await receiver.start();
    await leaksOnly.start();
    server = await startConfiguredServer(
      {
        limits: LIMITS,
        webhooks: [
          { url: receiver.url, secret: SECRET },
          { url: leaksOnly.url, secret: SECRET, events: ['token.leaked'] },
        ],
      },
      { clock },
    );
    owner = await createTestAccount(server.services, 'hooked', [
      'tokens:read',
      'tokens:write',
      'styles:write',
    ]);
  });
  after(async () => {
    await server?.close();
    await receiver.close();
    await leaksOnly.close();
  });

  test('a created token is announced: signed body, event headers, metadata only', async () => {
    const before = receiver.requests.length;
    const created = await api(server, 'POST', '/tokens/v2/hooked', {
      token: owner.adminToken,
      json: { note: 'announced', scopes: ['styles:write'] },
    });
    const token = created.body as { id: string; token: string };
    await server.services.webhooks.tick();
    await until(() => receiver.requests.length > before, 'the delivery');
    const request = receiver.requests.at(-1) as Received;
    const expected = `sha256=${createHmac('sha256', SECRET).update(request.body).digest('hex')}`;
    assert.equal(request.headers['x-tessera-signature'], expected);
    assert.equal(request.headers['x-tessera-event'], 'token.created');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.match(String(request.headers['x-tessera-delivery']), /^[0-9a-f-]{36}$/);
    const event = JSON.parse(request.body);
    assert.equal(event.type, 'token.created');
    assert.match(event.id, /^e[a-z0-9]{24}$/);
    assert.deepEqual(event.data, {
      username: 'hooked',
      tokenId: token.id,
      actor: `token:${owner.adminTokenId}`,
      channel: 'api',
      usage: 'sk',
      scopes: ['styles:write'],
    });
    assert.ok(!request.body.includes(token.token), 'never the token');
    assert.equal(leaksOnly.requests.length, 0, 'a webhook gets only the events it asked for');
  });

  test('the request that caused an event never waits for the webhook', async () => {
    receiver.hold = true;
    try {
      const before = receiver.requests.length;
      const created = await api(server, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'quick', scopes: ['styles:write'] },
      });
      assert.equal(created.status, 200);
      const sending = server.services.webhooks.tick();
      await until(() => receiver.requests.length > before, 'the held delivery');
      const deleted = await api(
        server,
        'DELETE',
        `/tokens/v2/hooked/${(created.body as { id: string }).id}`,
        {
          token: owner.adminToken,
        },
      );
      assert.equal(deleted.status, 204, 'answered while the receiver still holds the first delivery');
      receiver.release();
      await sending;
    } finally {
      receiver.hold = false;
      receiver.release();
    }
    await server.services.webhooks.tick();
    await until(() => receiver.events().some((event) => event.type === 'token.deleted'), 'token.deleted');
  });

  test('a failing receiver is retried with backoff, the same delivery each time, then given up', async () => {
    receiver.status = () => 500;
    try {
      const created = await api(server, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'retried', scopes: ['styles:write'] },
      });
      const tokenId = (created.body as { id: string }).id;
      const mine = () => receiver.requests.filter((request) => request.body.includes(tokenId));
      await server.services.webhooks.tick();
      await until(() => mine().length === 1, 'the first attempt');
      await server.services.webhooks.tick();
      assert.equal(mine().length, 1, 'not again before the backoff');
      for (const [index, delay] of RETRY_DELAYS_S.entries()) {
        clock.advance(delay * 1000);
        await server.services.webhooks.tick();
        await until(() => mine().length === index + 2, `attempt ${index + 2}`);
      }
      clock.advance(DAY);
      await server.services.webhooks.tick();
      assert.equal(mine().length, RETRY_DELAYS_S.length + 1, 'given up after about a day');
      assert.equal(new Set(mine().map((request) => request.headers['x-tessera-delivery'])).size, 1);
      assert.equal(new Set(mine().map((request) => request.body)).size, 1);
      assert.ok(server.services.webhooks.failed >= 1);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^tessera_webhook_attempts_total\{outcome="failed"\} [1-9]/m);
    } finally {
      receiver.status = () => 204;
    }
  });

  test('a receiver that recovers gets the event on the next attempt', async () => {
    let calls = 0;
    receiver.status = () => (++calls === 1 ? 503 : 200);
    try {
      const created = await api(server, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'recovers', scopes: ['styles:write'] },
      });
      const tokenId = (created.body as { id: string }).id;
      const mine = () => receiver.requests.filter((request) => request.body.includes(tokenId));
      await server.services.webhooks.tick();
      await until(() => mine().length === 1, 'the first attempt');
      clock.advance((RETRY_DELAYS_S[0] as number) * 1000);
      await server.services.webhooks.tick();
      await until(() => mine().length === 2, 'the retry');
      await server.services.webhooks.tick();
      clock.advance(DAY);
      await server.services.webhooks.tick();
      assert.equal(mine().length, 2, 'delivered: never sent again');
    } finally {
      receiver.status = () => 204;
    }
  });

  test('a node without this webhook in its config leaves its deliveries to the nodes that have it', async () => {
    const other = await startConfiguredServer(
      { limits: LIMITS },
      { clock, env: { TESSERA_DATABASE_URL: server.services.config.databaseUrl } },
    );
    try {
      const before = receiver.requests.length;
      const created = await api(other, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'elsewhere', scopes: ['styles:write'] },
      });
      assert.equal(created.status, 200);
      await other.services.webhooks.tick();
      const raw = openDatabase(parseDatabaseUrl(server.services.config.databaseUrl));
      try {
        const pending = await raw
          .selectFrom('webhook_deliveries')
          .select(['status', 'attempts'])
          .where('payload', 'like', `%${(created.body as { id: string }).id}%`)
          .execute();
        assert.deepEqual(pending, [], 'a node without webhooks queues nothing for them');
      } finally {
        await raw.destroy();
      }
      // What a node with the webhook queues, a node without it never claims or fails.
      const mine = await api(server, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'here', scopes: ['styles:write'] },
      });
      const id = (mine.body as { id: string }).id;
      await other.services.webhooks.tick();
      assert.equal(other.services.webhooks.failed, 0);
      await server.services.webhooks.tick();
      await until(
        () => receiver.events().some((event) => event.data.tokenId === id),
        'delivery by the right node',
      );
      assert.ok(receiver.requests.length > before);
    } finally {
      await other.close();
    }
  });

  test('rotations and leaks are announced; the outbox holds neither the URL nor the secret', async () => {
    const created = (
      await api(server, 'POST', '/tokens/v2/hooked', {
        token: owner.adminToken,
        json: { note: 'rotated', scopes: ['styles:write'] },
      })
    ).body as { id: string; token: string };
    const rotated = (
      await api(server, 'POST', `/tokens/v2/hooked/${created.id}/rotate`, {
        token: owner.adminToken,
        json: { gracePeriod: 60 },
      })
    ).body as { id: string; token: string };
    await api(server, 'POST', '/leaks/v1/report', {
      token: owner.adminToken,
      json: { token: rotated.token },
    });
    await server.services.webhooks.tick();
    await until(() => receiver.events().some((event) => event.type === 'token.leaked'), 'token.leaked');
    const rotation = receiver
      .events()
      .find((event) => event.type === 'token.rotated' && event.data.tokenId === created.id);
    assert.equal(rotation?.data.replacement, rotated.id);
    assert.equal(rotation?.data.gracePeriod, 60);
    await until(() => leaksOnly.events().length === 1, 'the leaks-only webhook');
    assert.equal(leaksOnly.events()[0]?.data.tokenId, rotated.id);
    const rows = await server.services.store.listAudit({ username: 'hooked', limit: 1 });
    assert.equal(rows?.[0]?.action, 'token.leak');
    const raw = openDatabase(parseDatabaseUrl(server.services.config.databaseUrl));
    try {
      const deliveries = await raw.selectFrom('webhook_deliveries').selectAll().execute();
      const text = JSON.stringify(deliveries);
      assert.ok(deliveries.length > 0);
      assert.ok(!text.includes('do-not-store-me') && !text.includes(SECRET) && !text.includes(rotated.token));
    } finally {
      await raw.destroy();
    }
  });
});

describe('expiry notices and the unused-token policy', () => {
  const clock = new ManualClock();
  const receiver = new Receiver();
  let server: TestServer;
  let owner: TestAccount;

  before(async () => {
    await receiver.start();
    server = await startConfiguredServer(
      {
        limits: LIMITS,
        webhooks: [
          { url: receiver.url, secret: SECRET, events: ['token.expiring', 'token.expired', 'token.deleted'] },
        ],
        lifecycle: { expiringNoticeDays: 3, revokeUnusedAfterDays: 30 },
      },
      { clock },
    );
    owner = await createTestAccount(server.services, 'timely', [
      'tokens:read',
      'tokens:write',
      'styles:read',
    ]);
  });
  after(async () => {
    await server?.close();
    await receiver.close();
  });

  test('token.expiring once, days ahead; token.expired once, when it has', async () => {
    const token = (
      await api(server, 'POST', '/tokens/v2/timely', {
        token: owner.adminToken,
        json: {
          note: 'soon',
          scopes: ['styles:read'],
          expiresAt: new Date(clock.now() + 5 * DAY).toISOString(),
        },
      })
    ).body as { id: string };
    assert.deepEqual(await server.services.lifecycle.sweep(), { expiring: 0, expired: 0, revokedUnused: 0 });
    clock.advance(2 * DAY + 1000);
    assert.equal((await server.services.lifecycle.sweep()).expiring, 1);
    assert.equal((await server.services.lifecycle.sweep()).expiring, 0, 'once');
    // A new expiry date is announced again; then back to the first one.
    const moved = new Date(clock.now() + 2 * DAY).toISOString();
    const patch = await api(server, 'PATCH', `/tokens/v2/timely/${token.id}`, {
      token: owner.adminToken,
      json: { expiresAt: moved },
    });
    assert.equal(patch.status, 200, patch.text);
    assert.equal(
      (await server.services.lifecycle.sweep()).expiring,
      1,
      'a changed expiry is announced again',
    );
    await api(server, 'PATCH', `/tokens/v2/timely/${token.id}`, {
      token: owner.adminToken,
      json: { expiresAt: new Date(clock.now() + 3 * DAY - 1000).toISOString() },
    });
    assert.equal((await server.services.lifecycle.sweep()).expiring, 1);
    clock.advance(3 * DAY);
    assert.equal((await server.services.lifecycle.sweep()).expired, 1);
    assert.equal((await server.services.lifecycle.sweep()).expired, 0, 'once');
    const events = (await server.services.store.listAudit({ username: 'timely', limit: 10 })) ?? [];
    const mine = events
      .filter((event) => event.target === token.id)
      .map((event) => [event.action, event.actor]);
    assert.deepEqual(mine.slice(0, 2), [
      ['token.expire', 'system:expiry'],
      ['token.expiring', 'system:expiry'],
    ]);
    await server.services.webhooks.tick();
    await until(
      () => receiver.events().filter((event) => event.data.tokenId === token.id).length === 4,
      'every notice as a webhook (three expiring, one expired)',
    );
    clock.advance(-5 * DAY - 1000);
  });

  test('tokens unused for 30 days are revoked; recently used ones and the default token stay', async () => {
    const idle = (
      await api(server, 'POST', '/tokens/v2/timely', {
        token: owner.adminToken,
        json: { note: 'idle', scopes: ['styles:read'] },
      })
    ).body as { id: string; token: string };
    const busy = (
      await api(server, 'POST', '/tokens/v2/timely', {
        token: owner.adminToken,
        json: { note: 'busy', scopes: ['styles:read'] },
      })
    ).body as { id: string; token: string };
    const automation = (
      await api(server, 'POST', '/tokens/v2/timely', {
        token: owner.adminToken,
        json: { note: 'automation', scopes: ['tokens:read'] },
      })
    ).body as { id: string; token: string };
    clock.advance(29 * DAY);
    // Used on Tessera's own API only: that is use too.
    assert.equal((await api(server, 'GET', '/tokens/v2/timely', { token: automation.token })).status, 200);
    const used = await fetch(`${server.url}/auth/verify?scope=styles:read`, {
      headers: {
        'X-Original-URI': `/styles/v1/timely/x?access_token=${busy.token}`,
        'X-Original-Method': 'GET',
      },
    });
    assert.equal(used.status, 200);
    await server.services.usage.flush();
    clock.advance(2 * DAY);
    const swept = await server.services.lifecycle.sweep();
    assert.ok(swept.revokedUnused >= 2, JSON.stringify(swept)); // idle and the admin token of this test
    const code = async (token: string) =>
      ((await api(server, 'GET', '/tokens/v2', { token })).body as { code: string }).code;
    assert.equal(await code(idle.token), 'TokenRevoked');
    assert.equal(await code(busy.token), 'TokenValid');
    assert.equal(await code(automation.token), 'TokenValid', 'a Tokens API automation token is in use');
    assert.equal(
      await code(owner.defaultToken),
      'TokenValid',
      'the default token is never revoked for idling',
    );
    const event = (await server.services.store.listAudit({ username: 'timely', limit: 20 }))?.find(
      (entry) => entry.target === idle.id,
    );
    assert.equal(event?.action, 'token.delete');
    assert.equal(event?.actor, 'system:unused-policy');
    assert.deepEqual(event?.details, { usage: 'pk', reason: 'unused', unusedDays: 30 });
  });
});

describe('the maximum lifetime policy', () => {
  let server: TestServer;
  let owner: TestAccount;
  before(async () => {
    server = await startConfiguredServer({ limits: LIMITS, lifecycle: { maxLifetimeDays: 30 } });
    owner = await createTestAccount(server.services, 'capped', [
      'tokens:read',
      'tokens:write',
      'styles:read',
    ]);
  });
  after(() => server?.close());

  test('a token without an expiry gets one; a longer one or removing it is refused; the default token is exempt', async () => {
    const created = (
      await api(server, 'POST', '/tokens/v2/capped', {
        token: owner.adminToken,
        json: { scopes: ['styles:read'] },
      })
    ).body as { id: string; expiresAt: string };
    const expires = Date.parse(created.expiresAt);
    assert.ok(Math.abs(expires - (Date.now() + 30 * DAY)) < 60_000, created.expiresAt);
    assertError(
      await api(server, 'POST', '/tokens/v2/capped', {
        token: owner.adminToken,
        json: { scopes: ['styles:read'], expiresAt: new Date(Date.now() + 31 * DAY).toISOString() },
      }),
      422,
      'expiresAt must be at most 30 days from now: the operator caps token lifetimes',
    );
    assertError(
      await api(server, 'PATCH', `/tokens/v2/capped/${created.id}`, {
        token: owner.adminToken,
        json: { expiresAt: null },
      }),
      422,
      'expiresAt must be at most 30 days from now: the operator caps token lifetimes',
    );
    const [defaultToken] = (
      await api(server, 'GET', '/tokens/v2/capped?default=true', { token: owner.adminToken })
    ).body as Array<{ expiresAt?: string }>;
    assert.equal(defaultToken?.expiresAt, undefined);
    const rotated = (
      await api(server, 'POST', `/tokens/v2/capped/${created.id}/rotate`, {
        token: owner.adminToken,
        json: { gracePeriod: 0 },
      })
    ).body as { expiresAt: string };
    assert.ok(Date.parse(rotated.expiresAt) <= Date.now() + 30 * DAY, JSON.stringify(rotated));
    // A token from before the policy (no expiry) is brought within it by its next change.
    const old = (
      await api(server, 'POST', '/tokens/v2/capped', {
        token: owner.adminToken,
        json: { scopes: ['styles:read'] },
      })
    ).body as { id: string };
    const raw = openDatabase(parseDatabaseUrl(server.services.config.databaseUrl));
    try {
      await raw.updateTable('tokens').set({ expires_at: null }).where('id', '=', old.id).execute();
    } finally {
      await raw.destroy();
    }
    server.services.cache.evict(old.id);
    const renamed = (
      await api(server, 'PATCH', `/tokens/v2/capped/${old.id}`, {
        token: owner.adminToken,
        json: { note: 'renamed' },
      })
    ).body as { expiresAt?: string };
    assert.ok(
      Math.abs(Date.parse(renamed.expiresAt ?? '') - (Date.now() + 30 * DAY)) < 60_000,
      JSON.stringify(renamed),
    );
  });
});
