// The ordered list of row ids a view shows: live rows that pass the filters, sorted by the
// chosen column. Rebuilt lazily, only when something that affects membership or order changed.

import { columnByKey, sortValue } from './columns.js';
import { shownUntil } from './expiry.js';

/**
 * @typedef {{sort: string, dir: 'asc'|'desc', q: string, filters: Record<string, string>}} ViewState
 * @typedef {{ids: string[], live: number, nextChange: number,
 *   choices: Record<string, string[]>}} RowIndex
 */

/**
 * Whether a row matches the filter box: a case-insensitive substring of any shown or searched field.
 * @param {Record<string, any>} row
 * @param {string[]} fields
 * @param {string} needle already lower-cased, non-empty
 * @returns {boolean}
 */
export function matchesText(row, fields, needle) {
  for (const field of fields) {
    const value = row[field];
    if (value !== null && value !== undefined && String(value).toLowerCase().includes(needle)) {
      return true;
    }
  }
  return false;
}

// Each view's searched fields, worked out once: they are asked for per changed row of a diff.
/** @type {WeakMap<import('./columns.js').ViewDef, string[]>} */
const searchFieldsOf = new WeakMap();

/**
 * Fields the filter box searches in a view (times and countdowns are left out: they are not
 * what people type, and formatting 100k times per keystroke is not free). Shared: read only.
 * @param {import('./columns.js').ViewDef} view
 * @returns {string[]}
 */
export function searchFields(view) {
  let fields = searchFieldsOf.get(view);
  if (!fields) {
    const shown = view.columns.filter((c) => !['time', 'time-ms', 'remaining'].includes(c.kind ?? ''));
    fields = [...shown.map((c) => c.key), ...view.search];
    searchFieldsOf.set(view, fields);
  }
  return fields;
}

/**
 * Compare two rows' sort keys the way a view orders them: by key, then by id so equal keys
 * keep a stable order.
 * @param {number|string} keyA
 * @param {string} idA
 * @param {number|string} keyB
 * @param {string} idB
 * @param {number} sign 1 ascending, -1 descending
 * @returns {number}
 */
export function compareKeys(keyA, idA, keyB, idB, sign) {
  if (keyA < keyB) return -sign;
  if (keyA > keyB) return sign;
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}

/**
 * The column a view is sorted by: the chosen one, else the view's default, else its first.
 * @param {import('./columns.js').ViewDef} view
 * @param {ViewState} state
 * @returns {import('./columns.js').Column}
 */
export function sortColumn(view, state) {
  return columnByKey(view, state.sort) ?? columnByKey(view, view.sort.key) ?? view.columns[0];
}

/**
 * Build the view's index from all rows.
 * @param {Map<string, Record<string, any>>} rows
 * @param {import('./columns.js').ViewDef} view
 * @param {ViewState} state
 * @param {number} now server unix seconds
 * @returns {RowIndex}
 */
export function buildIndex(rows, view, state, now) {
  const column = sortColumn(view, state);
  const needle = state.q.trim().toLowerCase();
  const fields = searchFields(view);
  const active = Object.entries(state.filters).filter(([, value]) => value !== '');
  /** @type {Record<string, Set<string>>} */
  const seen = Object.fromEntries(view.filters.map((key) => [key, new Set()]));
  /** @type {string[]} */
  const ids = [];
  /** @type {Array<number|string>} */
  const keys = [];
  let nextChange = Number.POSITIVE_INFINITY;
  let live = 0;
  for (const [id, row] of rows) {
    if (view.expiring) {
      const until = shownUntil(row, now);
      if (until === null) continue;
      nextChange = Math.min(nextChange, until);
    }
    live += 1;
    for (const key of view.filters) seen[key].add(String(row[key] ?? ''));
    if (active.some(([key, value]) => String(row[key] ?? '') !== value)) continue;
    if (needle && !matchesText(row, fields, needle)) continue;
    ids.push(id);
    keys.push(sortValue(column, row));
  }
  const sign = state.dir === 'desc' ? -1 : 1;
  const order = ids.map((_, i) => i);
  order.sort((a, b) => compareKeys(keys[a], ids[a], keys[b], ids[b], sign));
  /** @type {Record<string, string[]>} */
  const choices = {};
  for (const key of view.filters) choices[key] = [...seen[key]].filter((v) => v !== '').sort();
  return { ids: order.map((i) => ids[i]), live, nextChange, choices };
}

/**
 * Whether a change to these fields can move a row in or out of the view or change its place.
 * @param {Set<string>} fields changed fields of one row
 * @param {import('./columns.js').ViewDef} view
 * @param {ViewState} state
 * @returns {boolean}
 */
export function affectsIndex(fields, view, state) {
  const column = sortColumn(view, state);
  if (column && fields.has(column.from ?? column.key)) return true;
  if (view.expiring && fields.has('expires')) return true;
  if (view.filters.some((key) => fields.has(key))) return true;
  if (state.q.trim()) return searchFields(view).some((key) => fields.has(key));
  return false;
}
