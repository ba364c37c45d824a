import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestAccount, startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('a new account lists its default token through the Tokens API', async () => {
  const account = await createTestAccount(server.services, 'smoke');
  const response = await fetch(
    `${server.url}/tokens/v2/smoke?default=true&access_token=${account.adminToken}`,
  );
  assert.equal(response.status, 200);
  const tokens = (await response.json()) as Array<{ token: string; default: boolean }>;
  assert.deepEqual(
    tokens.map((token) => [token.default, token.token]),
    [[true, account.defaultToken]],
  );
});
