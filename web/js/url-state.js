// What the URL holds: the view, its sort and filters, an open details panel, and the display
// options (kiosk, rotate, page, queue_alarm, alarm_repeat). Reloading or sharing the URL reproduces the page.
// Parameters this module does not know (e.g. a display token) are kept untouched.

import { filterKeys, VIEWS, viewByName } from './viewdefs.js';

const FILTER_KEYS = ['group', 'status', 'transport', 'expires'];
const DEFAULT_QUEUE_ALARM = 300;
// Seconds between reminder beeps for an alarm nobody acknowledged (`alarm_repeat=0`: never).
const DEFAULT_ALARM_REPEAT = 60;
// A wall pages through a table longer than its screen every this many seconds (`page=0`: never).
const DEFAULT_PAGE_SECONDS = 10;

/**
 * @typedef {{view: string, sort: string|null, dir: 'asc'|'desc'|null, q: string,
 *   filters: Record<string, string>, details: {kind: 'account'|'message', key: string}|null,
 *   kiosk: boolean, rotate: number, queueAlarm: number, page: number, alarmRepeat: number}}
 *   PageState  page: seconds a wall shows each page of a long table, 0 for no paging;
 *   alarmRepeat: seconds between reminders of an unacknowledged alarm, 0 for none
 */

/**
 * A positive number parameter, or the fallback.
 * @param {string|null} raw
 * @param {number} fallback
 * @returns {number}
 */
function positive(raw, fallback) {
  const n = Number(raw);
  return raw !== null && raw !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

/**
 * Read the page state from a query string.
 * @param {string} search location.search
 * @returns {PageState}
 */
export function readState(search) {
  const params = new URLSearchParams(search);
  const view = viewByName(params.get('view'));
  /** @type {Record<string, string>} */
  const filters = {};
  for (const key of filterKeys(view)) filters[key] = params.get(key) ?? '';
  const dir = params.get('dir');
  const account = params.get('account');
  const message = params.get('message');
  const kiosk = ['1', 'true', 'yes'].includes(params.get('kiosk') ?? '');
  return {
    view: view.name,
    sort: view.columns.some((c) => c.key === params.get('sort')) ? params.get('sort') : null,
    dir: dir === 'asc' || dir === 'desc' ? dir : null,
    q: params.get('q') ?? '',
    filters,
    details: account !== null ? { kind: 'account', key: account }
      : message !== null ? { kind: 'message', key: message } : null,
    kiosk,
    rotate: positive(params.get('rotate'), 0),
    queueAlarm: positive(params.get('queue_alarm'), DEFAULT_QUEUE_ALARM),
    page: params.get('page') === '0' ? 0 : positive(params.get('page'), DEFAULT_PAGE_SECONDS),
    alarmRepeat: params.get('alarm_repeat') === '0' ? 0 : positive(params.get('alarm_repeat'), DEFAULT_ALARM_REPEAT),
  };
}

/**
 * The state a view starts in: the URL's sort, direction, filter text and filters for the
 * URL's view (a sort without a direction is ascending), the view's defaults for the others.
 * @param {PageState} page
 * @param {import('./viewdefs.js').ViewDef} def
 * @returns {import('./rowindex.js').ViewState}
 */
export function initialViewState(page, def) {
  const fromUrl = page.view === def.name;
  /** @type {Record<string, string>} */
  const filters = {};
  for (const key of filterKeys(def)) filters[key] = fromUrl ? page.filters[key] ?? '' : '';
  return {
    sort: (fromUrl && page.sort) || def.sort.key,
    dir: (fromUrl && page.dir) || (fromUrl && page.sort ? 'asc' : def.sort.dir),
    q: fromUrl ? page.q : '', filters,
  };
}

/**
 * The query string for a view's state, keeping unknown parameters from `base`.
 * @param {string} base current location.search
 * @param {{view: string, sort: string, dir: string, q: string, filters: Record<string, string>,
 *   details: {kind: string, key: string}|null}} state
 * @returns {string} "?..." (or "" when empty)
 */
export function queryFor(base, state) {
  const params = new URLSearchParams(base);
  const view = viewByName(state.view);
  for (const key of ['view', 'sort', 'dir', 'q', 'account', 'message', ...FILTER_KEYS]) params.delete(key);
  if (view.name !== VIEWS[0].name) params.set('view', view.name);
  if (state.sort !== view.sort.key || state.dir !== view.sort.dir) {
    params.set('sort', state.sort);
    params.set('dir', state.dir);
  }
  if (state.q) params.set('q', state.q);
  for (const [key, value] of Object.entries(state.filters)) if (value) params.set(key, value);
  if (state.details) params.set(state.details.kind, state.details.key);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Write the state into the address bar without adding history entries.
 * @param {Parameters<typeof queryFor>[1]} state
 */
export function writeState(state) {
  const query = queryFor(location.search, state);
  if (query !== location.search) history.replaceState(null, '', `${location.pathname}${query}${location.hash}`);
}
