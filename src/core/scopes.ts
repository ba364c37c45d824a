export interface Scope {
  readonly id: string;
  readonly description: string;
  readonly public: boolean;
}

export type ScopeCatalogue = ReadonlyMap<string, Scope>;

/** Scope ids are ASCII so they encode into a token payload without surprises. */
export const SCOPE_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}(:[a-z0-9][a-z0-9._-]{0,31}){1,2}$/;

const PUBLIC: ReadonlyArray<readonly [string, string]> = [
  ['styles:tiles', 'Read styles as raster tiles and static images.'],
  ['styles:read', 'Read styles; needed to load a style in a map client.'],
  ['fonts:read', 'Read fonts and glyph ranges.'],
  ['datasets:read', 'Read datasets.'],
  ['vision:read', 'Read vision services.'],
];

const SECRET: ReadonlyArray<readonly [string, string]> = [
  ['scopes:list', 'List all available scopes.'],
  ['map:read', 'Read tilesets, tile statistics and legacy projects.'],
  ['map:write', 'Create and update tilesets and tile statistics.'],
  ['user:read', 'Read the account profile.'],
  ['user:write', 'Modify the account profile.'],
  ['uploads:read', 'Read the status of uploads.'],
  ['uploads:list', 'List uploads.'],
  ['uploads:write', 'Create uploads.'],
  ['styles:write', 'Create and update styles.'],
  ['styles:list', 'List styles.'],
  ['styles:download', 'Download styles.'],
  ['styles:protect', 'Protect write access to styles and their assets.'],
  ['fonts:list', 'List fonts.'],
  ['fonts:write', 'Upload and delete fonts.'],
  ['fonts:metadata', 'Read font metadata.'],
  ['tokens:read', 'List access tokens.'],
  ['tokens:write', 'Create, update and delete access tokens.'],
  ['datasets:list', 'List datasets.'],
  ['datasets:write', 'Create, update and delete datasets.'],
  ['tilesets:list', 'List tilesets.'],
  ['tilesets:read', 'Read tilesets.'],
  ['tilesets:write', 'Create and publish tilesets.'],
  ['downloads:read', 'Download SDKs and other protected downloads.'],
  ['vision:download', 'Download vision SDKs.'],
  ['navigation:download', 'Download navigation SDKs.'],
  ['offline:read', 'Read offline packs.'],
  ['offline:write', 'Create offline packs.'],
  ['user-feedback:read', 'Read user feedback.'],
  ['atlas:read', 'Download Atlas packages.'],
  ['analytics:read', 'Read usage statistics.'],
  ['audit:read', 'Read the account audit log.'],
];

/** The default catalogue (Mapbox's scopes plus `audit:read`), extended by operator scopes. */
export function buildCatalogue(extra: readonly Scope[] = []): ScopeCatalogue {
  const catalogue = new Map<string, Scope>();
  for (const [id, description] of PUBLIC) catalogue.set(id, { id, description, public: true });
  for (const [id, description] of SECRET) catalogue.set(id, { id, description, public: false });
  for (const scope of extra) {
    if (catalogue.has(scope.id)) throw new TypeError(`scope ${scope.id} is already defined`);
    catalogue.set(scope.id, scope);
  }
  return catalogue;
}

export function publicScopeIds(catalogue: ScopeCatalogue): string[] {
  return [...catalogue.values()].filter((scope) => scope.public).map((scope) => scope.id);
}

export function allKnown(catalogue: ScopeCatalogue, scopes: readonly string[]): boolean {
  return scopes.every((scope) => catalogue.has(scope));
}

export function hasSecretScope(catalogue: ScopeCatalogue, scopes: readonly string[]): boolean {
  return scopes.some((scope) => catalogue.get(scope)?.public === false);
}

export function isSubset(requested: readonly string[], granted: readonly string[]): boolean {
  const allowed = new Set(granted);
  return requested.every((scope) => allowed.has(scope));
}

/** Duplicates are dropped; the order is the caller's. */
export function dedupeScopes(scopes: readonly string[]): string[] {
  return [...new Set(scopes)];
}
