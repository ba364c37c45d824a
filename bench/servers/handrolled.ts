/**
 * Baseline: the verifier a team might write by hand: Express, a SHA-256 of the token and one
 * SELECT per request against SQLite, with a scope check.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import SQLite from 'better-sqlite3';
import express from 'express';

const db = new SQLite(':memory:');
db.exec('create table tokens (hash text primary key, username text not null, scopes text not null)');
const token = `pk.${randomBytes(24).toString('hex')}`;
const insert = db.prepare('insert into tokens values (?, ?, ?)');
for (let i = 0; i < 10_000; i++) insert.run(createHash('sha256').update(`pk.${i}`).digest('hex'), 'u', '[]');
insert.run(createHash('sha256').update(token).digest('hex'), 'bench', JSON.stringify(['styles:read']));
const select = db.prepare('select username, scopes from tokens where hash = ?');

const app = express();
app.get('/auth/verify', (req, res) => {
  const original = new URL(String(req.headers['x-original-uri'] ?? '/'), 'http://x');
  const raw = original.searchParams.get('access_token');
  const row = raw
    ? (select.get(createHash('sha256').update(raw).digest('hex')) as
        | { username: string; scopes: string }
        | undefined)
    : undefined;
  if (!row) return void res.status(401).json({ message: 'Unauthorized' });
  if (!(JSON.parse(row.scopes) as string[]).includes(String(req.query.scope)))
    return void res.status(403).json({ message: 'Forbidden' });
  res.set('X-User', row.username).status(200).end();
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${(server.address() as AddressInfo).port} ${token}\n`);
});
