/** The closed set of failures the API reports. Each maps to one HTTP status and a default message. */
export type ErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'no_such_user'
  | 'access_token_required'
  | 'usage_invalid'
  | 'expires_in_past'
  | 'expires_too_far'
  | 'expires_beyond_authorizer'
  | 'scopes_invalid'
  | 'token_limit'
  | 'resources_invalid'
  | 'start_invalid'
  | 'invalid_field'
  | 'bad_request'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

/** Statuses and messages follow the Mapbox Tokens API verbatim where Mapbox has one. */
export const ERRORS: Readonly<Record<ErrorCode, ErrorSpec>> = {
  unauthorized: { status: 401, message: 'Unauthorized' },
  forbidden: { status: 403, message: 'Forbidden' },
  not_found: { status: 404, message: 'Not found' },
  no_such_user: { status: 404, message: 'No such user' },
  access_token_required: { status: 422, message: 'access token is required' },
  usage_invalid: { status: 422, message: 'usage must be pk or sk' },
  expires_in_past: { status: 422, message: 'expires is in the past' },
  expires_too_far: { status: 422, message: 'expires is more than one hour in the future' },
  expires_beyond_authorizer: {
    status: 422,
    message: 'expires may not be greater than the expiration of the authorizing token',
  },
  scopes_invalid: { status: 422, message: 'scopes are invalid' },
  token_limit: { status: 422, message: 'this account holds as many tokens as it may' },
  resources_invalid: { status: 422, message: 'resources are invalid' },
  start_invalid: { status: 422, message: 'start is invalid' },
  invalid_field: { status: 422, message: 'request body is invalid' },
  bad_request: { status: 400, message: 'Bad request' },
  conflict: { status: 409, message: 'Conflict' },
  payload_too_large: { status: 413, message: 'request body is larger than 65536 bytes' },
  unsupported_media_type: { status: 415, message: 'Content-Type must be application/json' },
  method_not_allowed: { status: 405, message: 'Method not allowed' },
  rate_limited: { status: 429, message: 'Too Many Requests' },
  unavailable: { status: 503, message: 'Service Unavailable' },
  internal: { status: 500, message: 'Internal Server Error' },
};

/** The one error class for expected failures. Its message is always safe to show to the caller. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message);
    this.name = 'TesseraError';
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

export function isTesseraError(value: unknown): value is TesseraError {
  return value instanceof TesseraError;
}
