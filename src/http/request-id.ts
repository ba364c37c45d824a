import { randomUUID } from 'node:crypto';

/**
 * Every answer of the app carries an `X-Request-Id`, and the log lines about that request carry the
 * same id: an operator can find the log of a failure a user reports without the answer ever saying
 * more than a plain message. Kept per request object, so the dashboard's error handler finds it too.
 */
const ids = new WeakMap<Request, string>();

export function assignRequestId(request: Request): string {
  const id = randomUUID();
  ids.set(request, id);
  return id;
}

export function requestIdOf(request: Request): string | undefined {
  return ids.get(request);
}
