import type { AuditEvent } from '../core/audit.ts';
import { toWire } from '../http/audit-routes.ts';
import { describeAction, type TokenLabels } from './audit-words.ts';

export const CSV_COLUMNS = [
  'time',
  'action',
  'description',
  'actor',
  'channel',
  'ip',
  'target',
  'target_name',
  'details',
  'id',
] as const;

/**
 * One CSV field (RFC 4180). A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a
 * tab or carriage return, which some read past) as a formula, and token names are anyone's text: such
 * a cell gets a leading `'`, which spreadsheets show as text (OWASP's advice for CSV injection).
 */
export function csvField(value: string): string {
  const inert = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(inert) ? `"${inert.replaceAll('"', '""')}"` : inert;
}

export function csvRow(values: readonly string[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

export function csvHeader(): string {
  return csvRow(CSV_COLUMNS);
}

/** One event as a CSV line; `labels` names the tokens it is about. */
export function csvEvent(event: AuditEvent, labels: TokenLabels): string {
  return csvRow([
    event.time,
    event.action,
    describeAction(event),
    event.actor,
    event.channel,
    event.ip ?? '',
    event.target,
    labels.get(event.target)?.note ?? '',
    event.details ? JSON.stringify(event.details) : '',
    event.id,
  ]);
}

/** One event as the API shows it, as an element of a JSON array. */
export function jsonEvent(event: AuditEvent, first: boolean): string {
  return `${first ? '' : ',\n'}${JSON.stringify(toWire(event))}`;
}
