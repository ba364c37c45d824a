/**
 * URL restrictions (`allowedUrls`). An entry names where a browser request may come from:
 * `https://app.example.com`, `app.example.com` (http or https), `*.example.com` (any subdomain),
 * with an optional port and an optional path prefix. Hosts compare exactly and case-insensitively.
 * This is a browser convenience, not authentication: non-browser clients can forge the headers.
 */
export interface AllowedUrl {
  readonly scheme?: 'http:' | 'https:';
  readonly host: string;
  readonly subdomains: boolean;
  readonly port?: string;
  readonly pathPrefix?: string;
}

export interface RequestSource {
  readonly origin?: string | undefined;
  readonly referer?: string | undefined;
}

export const MAX_ALLOWED_URL_LENGTH = 2048;

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443' };

/** Parses an allowedUrls entry; undefined when it is not a usable restriction. */
export function parseAllowedUrl(entry: string): AllowedUrl | undefined {
  if (entry.length === 0 || entry.length > MAX_ALLOWED_URL_LENGTH || /[\s\\]/.test(entry)) return undefined;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry);
  const withScheme = hasScheme ? entry : `https://${entry}`;
  const wildcard = /^[a-z]+:\/\/\*\./i.exec(withScheme);
  const text = wildcard ? withScheme.replace('*.', '') : withScheme;
  // `*` is only the leading subdomain wildcard: elsewhere (a path glob, say) it would silently never match.
  if (text.includes('*')) return undefined;
  const url = tryUrl(text);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return undefined;
  if (url.username || url.password || !isPlausibleHost(url.hostname, { wildcard: wildcard !== null })) {
    return undefined;
  }
  return {
    ...(hasScheme ? { scheme: url.protocol as 'http:' | 'https:' } : {}),
    host: trimDot(url.hostname),
    subdomains: wildcard !== null,
    ...explicitPort(url, text),
    ...(url.pathname !== '/' ? { pathPrefix: url.pathname } : {}),
  };
}

/** True when the request's Origin (or, without one, its Referer) matches one of the entries. */
export function isAllowedSource(entries: readonly AllowedUrl[], source: RequestSource): boolean {
  const url = sourceUrl(source);
  if (!url) return false;
  return entries.some((entry) => matches(entry, url));
}

/** Browsers send the same few Origin and Referer values again and again: parse each once. */
const SOURCES = new Map<string, URL | undefined>();
const MAX_SOURCES = 4096;

function parseSource(text: string): URL | undefined {
  if (SOURCES.has(text)) return SOURCES.get(text);
  const url = tryUrl(text);
  if (SOURCES.size >= MAX_SOURCES) SOURCES.clear();
  SOURCES.set(text, url);
  return url;
}

function sourceUrl(source: RequestSource): URL | undefined {
  const origin = source.origin ? parseSource(source.origin) : undefined;
  const referer = source.referer ? parseSource(source.referer) : undefined;
  // The Referer carries the path; use it when it agrees with the Origin (or there is no Origin).
  if (referer && (!origin || referer.origin === origin.origin)) return httpOnly(referer);
  return origin ? httpOnly(origin) : undefined;
}

/** `URL` drops a default port (`:443` on https), but an entry that names one still allows only it. */
function explicitPort(url: URL, text: string): { port?: string } {
  if (url.port) return { port: url.port };
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(text)?.[1] ?? '';
  const port = /:\d+$/.test(authority) ? DEFAULT_PORTS[url.protocol] : undefined;
  return port ? { port } : {};
}

function matches(entry: AllowedUrl, url: URL): boolean {
  if (entry.scheme && entry.scheme !== url.protocol) return false;
  const host = trimDot(url.hostname);
  const hostOk = entry.subdomains ? host.endsWith(`.${entry.host}`) : host === entry.host;
  if (!hostOk) return false;
  const port = url.port || DEFAULT_PORTS[url.protocol];
  if (entry.port && entry.port !== port) return false;
  return !entry.pathPrefix || pathHasPrefix(url.pathname, entry.pathPrefix);
}

function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

function httpOnly(url: URL): URL | undefined {
  return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
}

function tryUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function isPlausibleHost(host: string, options: { readonly wildcard: boolean }): boolean {
  if (host.includes('*') || host.startsWith('.')) return false;
  if (host === 'localhost' || host.startsWith('[')) return !options.wildcard;
  if (/^\d+(\.\d+){3}$/.test(host)) return !options.wildcard;
  return trimDot(host).includes('.');
}

function trimDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
