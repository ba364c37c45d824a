/**
 * The payload segment of a token: base64 of compact ASCII JSON that uses only [A-Za-z0-9].
 *
 * Why so strict: the official Mapbox SDK decodes this segment with a standard-alphabet (atob)
 * decoder that rejects `-` and `_`, while other tools expect base64url. A segment without
 * `+ / - _ =` decodes identically under both alphabets.
 */
const SAFE_SEGMENT = /^[A-Za-z0-9]+$/;
const MAX_SEGMENT_LENGTH = 4096;

/** Encodes a JSON object; returns undefined if no alignment yields a safe segment. */
export function encodePayload(json: Readonly<Record<string, unknown>>): string | undefined {
  const compact = JSON.stringify(json);
  if (!/^[\x20-\x7e]*$/.test(compact)) return undefined;
  // Sextets 62/63 come only from bytes such as `>`, `?`, `~`: shifting the text by one or two
  // spaces after `{` moves them to another position in their 3-byte group.
  for (const pad of ['', ' ', '  ']) {
    const text = `{${pad}${compact.slice(1)}`;
    const segment = Buffer.from(text, 'latin1').toString('base64').replace(/=+$/, '');
    if (SAFE_SEGMENT.test(segment)) return segment;
  }
  return undefined;
}

/** Decodes a payload segment to a plain JSON object, or undefined if it is not one. */
export function decodePayload(segment: string): Record<string, unknown> | undefined {
  if (segment.length > MAX_SEGMENT_LENGTH || !SAFE_SEGMENT.test(segment) || segment.length % 4 === 1) {
    return undefined;
  }
  const text = Buffer.from(segment, 'base64').toString('latin1');
  if (!/^[\x20-\x7e]*$/.test(text)) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
