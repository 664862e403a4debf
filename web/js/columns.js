// How a cell's text, sort key, colour class and CSV value come from a row and its column
// (the columns themselves are in viewdefs.js).

import { formatDuration, parseTime } from './format.js';

/**
 * @typedef {import('./viewdefs.js').Column} Column
 * @typedef {{zone: import('./format.js').Zone, now: number}} CellContext
 */

// How bad each status is, worst first: a Status column sorted ascending shows problems on
// top, and a status rtm does not know ranks just below FAILED (it is news, not health).
/** @type {Record<string, number>} */
const SEVERITY = { FAILED: 0, EXPIRED: 0, PENDING: 2, ENQUEUED: 3, OK: 4, DELIVERED: 4, DISABLED: 5 };
const UNKNOWN_SEVERITY = 1;

// A Status filter's pseudo value: every row whose status is not healthy (OK, DELIVERED) and
// not switched off on purpose (DISABLED).
export const PROBLEMS = 'problems';

// A time filter's pseudo value: the moment is less than SOON_SECONDS ahead (a registration
// about to expire). Membership changes with the clock, so the view rebuilds each second.
export const SOON = 'soon';
export const SOON_SECONDS = 60;

/**
 * Whether a row passes one column filter (`value` '' passes everything).
 * @param {Record<string, any>} row
 * @param {string} key
 * @param {string} value
 * @param {number} [now] server unix seconds (for SOON)
 * @returns {boolean}
 */
export function passesFilter(row, key, value, now = 0) {
  if (value === '') return true;
  if (value === SOON) {
    const t = parseTime(row[key]);
    return t !== null && t - now < SOON_SECONDS;
  }
  if (value === PROBLEMS) return (SEVERITY[String(row[key] ?? '').toUpperCase()] ?? UNKNOWN_SEVERITY) < SEVERITY.OK;
  return String(row[key] ?? '') === value;
}

/** Statuses that get a colour class; anything else is shown plainly. */
const KNOWN_STATUSES = new Set(['OK', 'FAILED', 'PENDING', 'DISABLED', 'ENQUEUED', 'DELIVERED', 'EXPIRED']);

/**
 * The text a cell shows.
 * @param {Column} column
 * @param {Record<string, any>} row
 * @param {CellContext} ctx
 * @returns {string}
 */
export function cellText(column, row, ctx) {
  const value = row[column.from ?? column.key];
  switch (column.kind) {
    case 'time':
    case 'time-ms': {
      const t = parseTime(value);
      if (t === null) return column.key === 'expires' ? 'never' : '';
      return ctx.zone.format(t, column.kind === 'time-ms');
    }
    case 'remaining': {
      const t = parseTime(value);
      if (t === null) return '∞';
      return t <= ctx.now ? 'expired' : formatDuration(t - ctx.now);
    }
    case 'age': {
      const t = parseTime(value);
      return t === null ? '' : formatDuration(Math.max(0, ctx.now - t));
    }
    case 'bool':
      if (value === null || value === undefined) return '';
      return value ? 'Yes' : 'No';
    case 'latency':
      return typeof value === 'number' ? `${Math.round(value)} ms` : '';
    default:
      return value === null || value === undefined ? '' : String(value);
  }
}

/**
 * The CSS class for a status value, never built from the raw (hostile) string.
 * @param {unknown} value
 * @returns {string}
 */
export function statusClass(value) {
  const text = String(value ?? '').toUpperCase();
  return KNOWN_STATUSES.has(text) ? `status status-${text.toLowerCase()}` : 'status status-other';
}

/**
 * The value rows are ordered by for a column: numbers for times and numbers, lower-cased text
 * otherwise.
 * @param {Column} column
 * @param {Record<string, any>} row
 * @returns {number|string}
 */
export function sortValue(column, row) {
  const value = row[column.from ?? column.key];
  switch (column.kind) {
    case 'time':
    case 'time-ms':
    case 'remaining': {
      const t = parseTime(value);
      return t === null ? Number.POSITIVE_INFINITY : t;
    }
    case 'age': {
      // Youngest first when ascending: the later the moment, the smaller the age.
      const t = parseTime(value);
      return t === null ? Number.POSITIVE_INFINITY : -t;
    }
    case 'number':
    case 'latency':
      return typeof value === 'number' ? value : Number.NEGATIVE_INFINITY;
    case 'bool':
      return value ? 1 : 0;
    case 'status':
      return SEVERITY[String(value ?? '').toUpperCase()] ?? UNKNOWN_SEVERITY;
    default:
      return value === null || value === undefined ? '' : String(value).toLowerCase();
  }
}

/**
 * The value a CSV export carries for a cell: the shown text, except raw numbers stay numbers.
 * @param {Column} column
 * @param {Record<string, any>} row
 * @param {CellContext} ctx
 * @returns {string|number}
 */
export function csvValue(column, row, ctx) {
  const value = row[column.key];
  if ((column.kind === 'number' || column.kind === 'latency') && typeof value === 'number') return value;
  return cellText(column, row, ctx);
}
