import { isTokenId } from '../core/identifiers.ts';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface Cursor {
  readonly value: string;
  readonly id: string;
}

/** An opaque `start` value: the sort value and id of the last token on the previous page. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.value}~${cursor.id}`, 'latin1').toString('base64url');
}

export function decodeCursor(text: string): Cursor | undefined {
  if (text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const [value, id, extra] = Buffer.from(text, 'base64url').toString('latin1').split('~');
  if (extra !== undefined || !value || !ISO_TIME.test(value) || !isTokenId(id)) return undefined;
  return { value, id };
}
