/**
 * JSON.parse accepts duplicate keys (the last wins) and `__proto__` keys that some code paths
 * turn into prototype changes. Requests with either are refused, as are very deep documents.
 */
export type StrictJsonResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly message: string };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 32;

export function parseStrictJson(text: string): StrictJsonResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: 'request body is not valid JSON' };
  }
  const problem = scanKeys(text);
  if (problem) return { ok: false, message: problem };
  if (containsNul(value)) return { ok: false, message: 'request body must not contain NUL characters' };
  // A lone surrogate would be stored as U+FFFD: what we acknowledge must be what we keep.
  if (!isWellFormed(value)) return { ok: false, message: 'request body contains an invalid Unicode string' };
  return { ok: true, value };
}

/** Walks the (already valid) JSON text, tracking the keys of each open object. */
function scanKeys(text: string): string | undefined {
  const stack: Array<Set<string> | null> = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (char === '"') {
      const end = stringEnd(text, index);
      const top = stack.at(-1);
      if (top && isKeyPosition(text, end)) {
        const key = JSON.parse(text.slice(index, end + 1)) as string;
        if (FORBIDDEN_KEYS.has(key)) return `request body must not contain the key "${key}"`;
        if (top.has(key)) return `request body has a duplicate key "${key}"`;
        top.add(key);
      }
      index = end + 1;
      continue;
    }
    if (char === '{' || char === '[') {
      stack.push(char === '{' ? new Set() : null);
      if (stack.length > MAX_DEPTH) return `request body is nested more than ${MAX_DEPTH} levels deep`;
    } else if (char === '}' || char === ']') {
      stack.pop();
    }
    index += 1;
  }
  return undefined;
}

function stringEnd(text: string, start: number): number {
  let index = start + 1;
  while (text[index] !== '"') index += text[index] === '\\' ? 2 : 1;
  return index;
}

function isKeyPosition(text: string, stringEndIndex: number): boolean {
  let index = stringEndIndex + 1;
  while (/\s/.test(text[index] ?? '')) index += 1;
  return text[index] === ':';
}

function isWellFormed(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed();
  if (Array.isArray(value)) return value.every(isWellFormed);
  if (value && typeof value === 'object') {
    return Object.entries(value).every(([key, item]) => key.isWellFormed() && isWellFormed(item));
  }
  return true;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value && typeof value === 'object') {
    return Object.entries(value).some(([key, item]) => key.includes('\0') || containsNul(item));
  }
  return false;
}
