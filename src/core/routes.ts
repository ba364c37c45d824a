/**
 * The route map of forward-auth: which scope a request to a given path (and method) needs, and the
 * service its usage is counted under. Patterns are path prefixes in which `*` stands for exactly one
 * path segment; the first matching route wins. `scope: null` admits any valid token.
 */
export interface Route {
  readonly pattern: string;
  readonly methods?: readonly string[];
  readonly scope: string | null;
  readonly service: string;
}

export interface CompiledRoute extends Route {
  readonly regex: RegExp;
}

const READS = ['GET', 'HEAD'] as const;

/** Mapbox-style paths, most specific first. */
export const DEFAULT_ROUTES: readonly Route[] = [
  { pattern: '/styles/v1/*/*/tiles/', methods: READS, scope: 'styles:tiles', service: 'tiles' },
  { pattern: '/styles/v1/*/*/static/', methods: READS, scope: 'styles:tiles', service: 'static' },
  { pattern: '/styles/v1/', methods: READS, scope: 'styles:read', service: 'styles' },
  { pattern: '/styles/v1/', scope: 'styles:write', service: 'styles' },
  { pattern: '/fonts/v1/', methods: READS, scope: 'fonts:read', service: 'fonts' },
  { pattern: '/fonts/v1/', scope: 'fonts:write', service: 'fonts' },
  { pattern: '/v4/', methods: READS, scope: 'styles:tiles', service: 'tiles' },
  { pattern: '/datasets/v1/', methods: READS, scope: 'datasets:read', service: 'datasets' },
  { pattern: '/datasets/v1/', scope: 'datasets:write', service: 'datasets' },
  { pattern: '/tilesets/v1/', methods: READS, scope: 'tilesets:read', service: 'tilesets' },
  { pattern: '/tilesets/v1/', scope: 'tilesets:write', service: 'tilesets' },
  { pattern: '/uploads/v1/', methods: READS, scope: 'uploads:read', service: 'uploads' },
  { pattern: '/uploads/v1/', scope: 'uploads:write', service: 'uploads' },
  { pattern: '/geocoding/v5/', methods: READS, scope: null, service: 'geocode' },
  { pattern: '/directions/v5/', methods: READS, scope: null, service: 'directions' },
];

export const ROUTE_PATTERN = /^\/([A-Za-z0-9._~!$&'()+,;=:@-]+\/|\*\/)*([A-Za-z0-9._~!$&'()+,;=:@-]*)$/;

export function compileRoutes(routes: readonly Route[]): CompiledRoute[] {
  return routes.map((route) => {
    const source = route.pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]+');
    return { ...route, regex: new RegExp(`^${source}`) };
  });
}

export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  path: string,
): CompiledRoute | undefined {
  const upper = method.toUpperCase();
  return routes.find((route) => (!route.methods || route.methods.includes(upper)) && route.regex.test(path));
}

const AMBIGUOUS_PATH = /%(2f|5c|00)|\\|[\0-\x20\x7f#]|\/\/|\/(\.|%2e){1,2};/i;

/**
 * The path as the upstream will see it. Undefined for dot segments (`.`, `..`, `%2e`: whether an
 * upstream resolves them, and how, varies, and no client of a real API needs them), and for paths whose meaning a server might read differently: encoded slashes or
 * backslashes, NUL and other control characters, a fragment, empty segments (nginx reads
 * `/a//../b` as `/b`, a URL parser as `/a/b`), dot segments with parameters (Tomcat reads `..;` as
 * `..`), or anything that is not an absolute path.
 */
const DOT_SEGMENT = /\/(\.|%2e){1,2}(\/|\?|$)/i;

export function normalisePath(rawPath: string): string | undefined {
  if (!rawPath.startsWith('/') || AMBIGUOUS_PATH.test(rawPath) || DOT_SEGMENT.test(rawPath)) return undefined;
  try {
    return new URL(rawPath, 'http://tessera.invalid').pathname;
  } catch {
    return undefined;
  }
}
