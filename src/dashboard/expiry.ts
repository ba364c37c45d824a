/**
 * The token forms' "Expires (UTC)" field. Browsers send `<input type="datetime-local">` as
 * `2027-12-31T23:59` (seconds only when typed); without its picker a user may type a space or only
 * a date. The value names a UTC time, whatever the browser's own time zone.
 */

const FIELD = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?)?$/;

export const EXPIRY_FORMAT_MESSAGE =
  'Enter the expiry as a UTC date and time, such as 2027-12-31T23:59, or leave it empty.';

export type ExpiryField =
  | { readonly ok: true; readonly value: string | null }
  | { readonly ok: false; readonly message: string };

/** The field's text as an ISO time (`null` when empty), or why it is not one. */
export function parseExpiryField(text: string): ExpiryField {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, value: null };
  const match = FIELD.exec(trimmed);
  if (!match) return { ok: false, message: EXPIRY_FORMAT_MESSAGE };
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(time);
  // Date.UTC rolls 2027-02-30 over into March: a date that does not come back unchanged is not one.
  const same =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute;
  if (!same) return { ok: false, message: EXPIRY_FORMAT_MESSAGE };
  return { ok: true, value: date.toISOString() };
}

/** An ISO time as the field shows it: to the minute, as `datetime-local` expects by default. */
export function expiryFieldValue(iso: string | undefined): string {
  return iso ? iso.slice(0, 16) : '';
}

/**
 * What an edit does to a token's expiry: `undefined` leaves it alone. The field shows the expiry to
 * the minute, so sending it back unchanged must not move an expiry set to the second (by the API)
 * or refuse a past one the user did not touch.
 */
export function expiryChange(text: string, current: string | undefined): ExpiryField | undefined {
  if (text.trim() === expiryFieldValue(current)) return undefined;
  return parseExpiryField(text);
}
