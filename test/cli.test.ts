import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliRun, runCli } from './helpers/cli.ts';
import { tempDataDir } from './helpers/server.ts';

type Run = CliRun;

let dataDir: string;

function tessera(args: readonly string[], options: { readonly stdin?: string } = {}): Promise<Run> {
  return runCli(args, { env: { TESSERA_DATA_DIR: dataDir }, ...options });
}

function json(run: Run): Record<string, unknown> {
  assert.equal(run.stderr, '', 'no error output');
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

const PASSWORD = 'a long passphrase for the cli';

before(() => {
  dataDir = tempDataDir();
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe('tessera CLI', () => {
  test('--help lists every command; <command> --help explains one; unknown commands exit 2', async () => {
    const help = await tessera(['--help']);
    assert.equal(help.code, 0);
    for (const command of [
      'serve',
      'migrate',
      'accounts create',
      'tokens create',
      'tokens list',
      'verify',
      'keys rotate',
    ]) {
      assert.match(help.stdout, new RegExp(command));
    }
    const tokensHelp = await tessera(['tokens', '--help']);
    assert.equal(tokensHelp.code, 0);
    assert.match(tokensHelp.stdout, /--allowed-url/);
    const unknown = await tessera(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^tessera: unknown command "frobnicate".*\n$/);
  });

  test('accounts create reads the password from stdin and prints the default public token', async () => {
    const run = await tessera(
      ['accounts', 'create', 'alice', '--email', 'alice@example.com', '--password-stdin'],
      {
        stdin: `${PASSWORD}\n`,
      },
    );
    assert.equal(run.code, 0);
    const account = json(run);
    assert.equal(account['username'], 'alice');
    assert.equal(account['email'], 'alice@example.com');
    assert.match(String(account['defaultToken']), /^pk\.[A-Za-z0-9]+\.[A-Za-z0-9]+$/);
    assert.doesNotMatch(run.stdout, new RegExp(PASSWORD));
  });

  test('account errors are one line on stderr with a non-zero exit status', async () => {
    const cases: Array<[string[], string, RegExp, number]> = [
      [
        ['accounts', 'create', 'alice', '--email', 'a@example.com', '--password-stdin'],
        PASSWORD,
        /username is already taken/,
        1,
      ],
      [
        ['accounts', 'create', 'bob', '--email', 'b@example.com', '--password-stdin'],
        'short',
        /at least 12 characters/,
        1,
      ],
      [
        ['accounts', 'create', 'jöhn', '--email', 'j@example.com', '--password-stdin'],
        PASSWORD,
        /username must be/,
        1,
      ],
      [
        ['accounts', 'create', 'carol', '--email', 'not-an-email', '--password-stdin'],
        PASSWORD,
        /email must be/,
        1,
      ],
      [
        ['accounts', 'create', 'dave', '--email', 'd@example.com'],
        PASSWORD,
        /--password-stdin is required/,
        2,
      ],
    ];
    for (const [args, stdin, message, code] of cases) {
      const run = await tessera(args, { stdin });
      assert.equal(run.code, code, args.join(' '));
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, 'a single line');
      assert.equal(run.stdout, '');
    }
  });

  test('tokens create, list, verify and delete a secret token', async () => {
    const created = json(
      await tessera(['tokens', 'create', 'alice', '--scopes', 'tokens:read,styles:read', '--note', 'ops']),
    );
    assert.equal(created['usage'], 'sk');
    assert.deepEqual(created['scopes'], ['tokens:read', 'styles:read']);
    const token = String(created['token']);
    assert.match(token, /^sk\./);

    const listed = json(await tessera(['tokens', 'list', 'alice'])) as unknown as Array<
      Record<string, unknown>
    >;
    const entry = listed.find((item) => item['id'] === created['id']);
    assert.ok(entry, 'the new token is listed');
    assert.equal(entry['token'], undefined, 'a secret token is never listed in full');
    assert.equal(listed.filter((item) => item['default'] === true).length, 1);

    const allowed = await tessera(['verify', token, '--scope', 'styles:read']);
    assert.equal(allowed.code, 0);
    assert.deepEqual(json(allowed), {
      allowed: true,
      username: 'alice',
      tokenId: created['id'],
      usage: 'sk',
      scopes: ['tokens:read', 'styles:read'],
    });

    const wrongScope = await tessera(['verify', token, '--scope', 'fonts:read']);
    assert.equal(wrongScope.code, 1);
    assert.equal(JSON.parse(wrongScope.stdout).reason, 'scope');

    const deleted = await tessera(['tokens', 'delete', 'alice', String(created['id'])]);
    assert.equal(deleted.code, 0);
    const revoked = await tessera(['verify', token]);
    assert.equal(revoked.code, 1);
    assert.equal(JSON.parse(revoked.stdout).reason, 'revoked');
    const again = await tessera(['tokens', 'delete', 'alice', String(created['id'])]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, 'tessera: Not found\n');
  });

  test('tokens create refuses unknown scopes and URL restrictions it cannot parse', async () => {
    const unknown = await tessera(['tokens', 'create', 'alice', '--scopes', 'tokens:admin']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'tessera: scopes are invalid\n');
    const badUrl = await tessera([
      'tokens',
      'create',
      'alice',
      '--scopes',
      'styles:read',
      '--allowed-url',
      'javascript:alert(1)',
    ]);
    assert.equal(badUrl.code, 1);
    assert.match(badUrl.stderr, /allowedUrls/);
    const nobody = await tessera(['tokens', 'list', 'nobody']);
    assert.equal(nobody.code, 1);
    assert.equal(nobody.stderr, 'tessera: No such user\n');
  });

  test('verify honours URL restrictions given as --origin or --referer', async () => {
    const created = json(
      await tessera([
        'tokens',
        'create',
        'alice',
        '--scopes',
        'styles:read',
        '--allowed-url',
        'https://app.example.com',
      ]),
    );
    const token = String(created['token']);
    assert.equal((await tessera(['verify', token, '--origin', 'https://app.example.com'])).code, 0);
    assert.equal((await tessera(['verify', token, '--referer', 'https://app.example.com/map'])).code, 0);
    const elsewhere = await tessera(['verify', token, '--origin', 'https://evil.example.com']);
    assert.equal(elsewhere.code, 1);
    assert.equal(JSON.parse(elsewhere.stdout).reason, 'url');
    assert.equal(
      (await tessera(['verify', token])).code,
      1,
      'a restricted token without Origin or Referer is refused',
    );
  });

  test('keys rotate adds an active key; the key file stays private', async () => {
    const before = json(await tessera(['keys', 'list']));
    const rotated = json(await tessera(['keys', 'rotate']));
    assert.notEqual(rotated['active'], before['active']);
    const keys = rotated['keys'] as Array<{ kid: string }>;
    assert.deepEqual(
      keys.map((key) => key.kid),
      [before['active'], rotated['active']],
    );
    assert.doesNotMatch(JSON.stringify(rotated), /secret/);
    assert.equal(statSync(join(dataDir, 'signing-keys.json')).mode & 0o777, 0o600);
  });

  test('migrate reports nothing left to apply on an up-to-date database', async () => {
    assert.deepEqual(json(await tessera(['migrate'])), { applied: [] });
  });
});
