import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One measured value, as docs/security.md shows it: a number or a short phrase ("100%", "ok 20/20"). */
export type Figure = number | string;

/**
 * Records the figures a security or reliability test measured, under the checklist row it backs
 * (`T01`..`T74` of the security plan, or a campaign name such as `fuzz`).
 *
 * A plain `npm test` writes nothing: the figures go to `$TESSERA_FIGURES_DIR/<row>.json` only when that
 * variable is set, which `npm run security:figures` does before it regenerates the table in
 * docs/security.md. Several tests may record under one row; their figures are merged.
 */
export function recordFigures(row: string, figures: Readonly<Record<string, Figure>>): void {
  const dir = process.env['TESSERA_FIGURES_DIR'];
  if (!dir) return;
  if (!/^[A-Za-z0-9-]+$/.test(row)) throw new Error(`not a figure row name: ${row}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${row}.json`);
  let previous: Record<string, Figure> = {};
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Figure>;
  } catch {
    // first figures for this row
  }
  writeFileSync(file, `${JSON.stringify({ ...previous, ...figures }, null, 2)}\n`);
}
