import { request as httpRequest } from 'node:http';
import type { TestServer } from './server.ts';

/** What a dashboard request answered. Redirects are never followed, so a 303 is seen as such. */
export interface Page {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Every `Set-Cookie` line, unparsed, so tests can read their attributes. */
  readonly setCookies: readonly string[];
  readonly location: string | null;
  /** The `_csrf` value of the first form on the page, if it has one. */
  readonly formToken: string | undefined;
}

export type Fields = Readonly<Record<string, string | readonly string[]>>;

export interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
}

export interface PostOptions extends RequestOptions {
  /** The form token to send: by default the last one read from a page; `null` sends none. */
  readonly csrf?: string | null;
  /** A raw body instead of `fields` (with whatever `headers` say its type is). */
  readonly body?: string | Uint8Array;
}

const DEFAULT_PASSWORD = 'correct horse battery staple';

/**
 * A browser without a browser: a cookie jar, the `_csrf` of the last page it read, and form posts
 * that carry `Origin` like a real same-origin form post does. `origin` defaults to the server's.
 */
export class DashboardClient {
  readonly server: TestServer;
  readonly origin: string;
  readonly #jar = new Map<string, string>();
  #formToken: string | undefined;

  constructor(server: TestServer, options: { readonly origin?: string } = {}) {
    this.server = server;
    this.origin = options.origin ?? new URL(server.url).origin;
  }

  /** The last form token read from a page. */
  get formToken(): string | undefined {
    return this.#formToken;
  }

  cookie(name: string): string | undefined {
    return this.#jar.get(name);
  }

  cookies(): ReadonlyMap<string, string> {
    return new Map(this.#jar);
  }

  setCookie(name: string, value: string): void {
    this.#jar.set(name, value);
  }

  clearCookies(): void {
    this.#jar.clear();
  }

  /** A browser's page load: `Accept: text/html`, cookies, and the page's form token remembered. */
  get(path: string, options: RequestOptions = {}): Promise<Page> {
    return this.request('GET', path, { headers: options.headers ?? {} });
  }

  /** A same-origin form post (urlencoded, `Origin`, `Sec-Fetch-Site: same-origin`, the form token). */
  post(path: string, fields: Fields = {}, options: PostOptions = {}): Promise<Page> {
    const csrf = options.csrf === undefined ? this.#formToken : options.csrf;
    const body =
      options.body ?? encodeForm(csrf === null || csrf === undefined ? fields : { _csrf: csrf, ...fields });
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      origin: this.origin,
      'sec-fetch-site': 'same-origin',
      ...options.headers,
    };
    return this.request('POST', path, { headers: withoutEmpty(headers), body });
  }

  /** Any method, with the jar's cookies and `Accept: text/html` unless `headers` say otherwise. */
  async request(
    method: string,
    path: string,
    init: { readonly headers: Readonly<Record<string, string>>; readonly body?: string | Uint8Array },
  ): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (this.#jar.size > 0 && headers.cookie === undefined) headers.cookie = this.cookieHeader();
    const request: RequestInit = { method, headers: withoutEmpty(headers), redirect: 'manual' };
    if (init.body !== undefined) request.body = init.body;
    const response = await fetch(new URL(path, this.server.url), request);
    const text = await response.text();
    const setCookies = response.headers.getSetCookie();
    this.#store(setCookies);
    const formToken = readFormToken(text);
    if (formToken) this.#formToken = formToken;
    const location = response.headers.get('location');
    return { status: response.status, headers: response.headers, text, setCookies, location, formToken };
  }

  /** Loads the sign-in page and signs in; returns the answer to the form post. */
  async signIn(username: string, password = DEFAULT_PASSWORD, options: PostOptions = {}): Promise<Page> {
    await this.get('/signin');
    return this.post('/signin', { username, password, next: '/account' }, options);
  }

  /** Signs in and insists it worked. */
  async signInOk(username: string, password = DEFAULT_PASSWORD): Promise<void> {
    const answer = await this.signIn(username, password);
    if (answer.status !== 303 || answer.location !== '/account') {
      throw new Error(`sign-in as ${username} failed: ${answer.status} ${answer.location ?? ''}`);
    }
    await this.get('/account');
  }

  cookieHeader(): string {
    return [...this.#jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  #store(lines: readonly string[]): void {
    for (const line of lines) {
      const cookie = parseSetCookie(line);
      if (cookie.value === '' || cookie.attributes.get('max-age') === '0') this.#jar.delete(cookie.name);
      else this.#jar.set(cookie.name, cookie.value);
    }
  }
}

export interface ParsedCookie {
  readonly name: string;
  readonly value: string;
  /** Lower-cased attribute names; flags map to ''. */
  readonly attributes: ReadonlyMap<string, string>;
}

export function parseSetCookie(line: string): ParsedCookie {
  const [pair = '', ...rest] = line.split(';');
  const eq = pair.indexOf('=');
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const [key = '', ...value] = part.trim().split('=');
    attributes.set(key.toLowerCase(), value.join('='));
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes };
}

export function encodeForm(fields: Fields): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const one of typeof value === 'string' ? [value] : value) params.append(name, one);
  }
  return params.toString();
}

export function readFormToken(html: string): string | undefined {
  return /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
}

/** The page without its form token: what stays once the per-browser part is removed. */
export function withoutFormToken(html: string): string {
  return html.replace(/name="_csrf" value="[^"]*"/g, 'name="_csrf" value=""');
}

function withoutEmpty(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== ''));
}

export { DEFAULT_PASSWORD };

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
}

/** Any method over node:http, which (unlike fetch) sends TRACE and TRACK too. */
export function rawRequest(
  server: TestServer,
  method: string,
  path: string,
  options: { readonly headers?: Readonly<Record<string, string>>; readonly body?: string } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    // Node sends a DELETE body unframed unless told its length.
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    const request = httpRequest(new URL(path, server.url), { method, headers });
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    request.end(options.body);
  });
}

/** The visible text of an HTML fragment: tags dropped (block ones as spaces), entities of our escaping decoded, spaces collapsed. */
export function visibleText(html: string): string {
  return html
    .replace(/<\/?(time|code|span|a|strong)\b[^>]*>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
    .replace(/\s+/g, ' ')
    .trim();
}
