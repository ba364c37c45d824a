/** The package entry. It never loads the HTTP server or the dashboard. */
export { type Decision, type DenialReason, decide } from './core/decision.ts';
export { type ErrorCode, TesseraError } from './core/errors.ts';
export { buildCatalogue, type Scope } from './core/scopes.ts';
export { type ParsedToken, parseToken, type Usage } from './core/token-format.ts';
export type { TokenCode } from './core/token-status.ts';
export type { TokenMetadata } from './core/tokens.ts';
export { isAllowedSource, parseAllowedUrl } from './core/url-restrictions.ts';
export {
  createVerifier,
  type EmbeddedVerifierOptions,
  type RemoteVerifierOptions,
  type Verifier,
  type VerifyInput,
} from './verifier/create-verifier.ts';
export { type GuardOptions, tesseraExpress, tesseraHono } from './verifier/middleware.ts';
