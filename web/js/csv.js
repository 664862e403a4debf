// CSV export of the current filtered view, built in the page (Blob) and safe to open in a
// spreadsheet: formula-looking text is neutralised.

import { csvValue } from './columns.js';

// Countdowns and ages are the page's clock, not data: an export carries the times instead.
const CLOCK_KINDS = ['remaining', 'age'];

/**
 * One CSV field: numbers as they are; text quoted, quotes doubled, and text starting with a
 * formula character (equals, plus, minus, at sign, tab, CR) prefixed with an apostrophe so a spreadsheet treats it
 * as text (spreadsheet formula injection).
 * @param {string|number} value
 * @returns {string}
 */
export function csvField(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

/**
 * The CSV text (RFC 4180, CRLF line ends) for rows under columns.
 * @param {import('./viewdefs.js').Column[]} columns
 * @param {Array<Record<string, any>>} rows
 * @param {import('./columns.js').CellContext} ctx
 * @returns {string}
 */
export function toCsv(columns, rows, ctx) {
  const lines = [columns.map((c) => csvField(c.label)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(csvValue(c, row, ctx))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * Offer text as a file download.
 * @param {string} filename
 * @param {string} text
 */
export function download(filename, text) {
  // The BOM makes spreadsheet programs read the file as UTF-8.
  const blob = new Blob(['\ufeff', text], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * Download a view's shown rows as CSV (without its clock columns), named after the view and
 * the server's time.
 * @param {import('./viewdefs.js').ViewDef} def
 * @param {Array<Record<string, any>>} rows in the order shown
 * @param {import('./columns.js').CellContext} ctx
 */
export function exportView(def, rows, ctx) {
  const columns = def.columns.filter((column) => !CLOCK_KINDS.includes(column.kind ?? ''));
  const stamp = ctx.zone.format(ctx.now).slice(0, 19).replace(/[: ]/g, '-');
  download(`rtm-${def.name}-${stamp}.csv`, toCsv(columns, rows, ctx));
}
