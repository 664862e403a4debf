// The three views' columns (after the original PSOM pages) and how a cell's text, sort key and
// CSV value come from a row.

import { formatDuration, parseTime } from './format.js';

/**
 * @typedef {{key: string, label: string, kind?: string, width?: string, link?: string,
 *   from?: string, kiosk?: boolean}} Column  kiosk: false hides the column on wall displays
 * @typedef {{name: string, table: string, title: string, empty: string, short: string,
 *   sort: {key: string, dir: 'asc'|'desc'}, filters: string[], search: string[],
 *   columns: Column[], expiring?: boolean}} ViewDef
 * @typedef {{zone: import('./format.js').Zone, now: number}} CellContext
 */

/** @type {ViewDef[]} */
export const VIEWS = [
  {
    name: 'accounts',
    table: 'accounts',
    title: 'Registered Accounts',
    empty: 'No registered contacts.',
    short: 'Accounts',
    sort: { key: 'username', dir: 'asc' },
    filters: ['group', 'transport'],
    search: ['domain', 'contact'],
    expiring: true,
    columns: [
      { key: 'username', label: 'Username', width: 'm', link: 'account' },
      { key: 'owner', label: 'Owner', width: 'm' },
      { key: 'caller_id', label: 'Caller Id', width: 'phone' },
      { key: 'caller_id_2', label: 'Caller Id 2', width: 'phone', kiosk: false },
      { key: 'group', label: 'Group', width: 's' },
      { key: 'ip', label: 'IpAddr', width: 'ip' },
      { key: 'port', label: 'Port', kind: 'number', width: 'port', kiosk: false },
      { key: 'transport', label: 'Transport', width: 'xs' },
      { key: 'expires', label: 'Registration Expires', kind: 'time', width: 'l', kiosk: false },
      { key: 'remaining', label: 'Remaining', kind: 'remaining', from: 'expires', width: 's' },
      { key: 'user_agent', label: 'UserAgent', width: 'rest' },
    ],
  },
  {
    name: 'trunks',
    table: 'trunks',
    title: 'Sip trunk status',
    empty: 'No trunks configured.',
    short: 'Trunks',
    sort: { key: 'name', dir: 'asc' },
    filters: ['status', 'transport'],
    search: [],
    columns: [
      { key: 'host', label: 'Host', width: 'rest' },
      { key: 'name', label: 'Name', width: 'm' },
      { key: 'virtual_number', label: 'Virtual Phone Number', width: 'phone' },
      { key: 'username', label: 'Username', width: 's', kiosk: false },
      { key: 'transport', label: 'Transport', width: 'xs' },
      { key: 'encryption', label: 'Encryption', kind: 'bool', width: 's', kiosk: false },
      { key: 'status', label: 'Status', kind: 'status', width: 'm' },
      { key: 'reason', label: 'Reason', width: 'rest' },
      { key: 'since', label: 'Since', kind: 'time', width: 'l' },
      { key: 'latency_ms', label: 'Latency', kind: 'latency', width: 'xs' },
    ],
  },
  {
    name: 'queue',
    table: 'queue',
    title: 'Message List',
    empty: 'The queue is empty.',
    short: 'Queue',
    sort: { key: 'received', dir: 'desc' },
    filters: ['status'],
    search: ['uuid', 'from_account', 'to_account'],
    columns: [
      { key: 'received', label: 'Received', kind: 'time-ms', width: 'l', link: 'message' },
      { key: 'from', label: 'From', width: 'm' },
      { key: 'to', label: 'To', width: 'm' },
      { key: 'status', label: 'Status', kind: 'status', width: 's' },
      { key: 'sent', label: 'Sent', kind: 'number', width: 'xs' },
    ],
  },
];

/** Statuses that get a colour class; anything else is shown plainly. */
const KNOWN_STATUSES = new Set(['OK', 'FAILED', 'PENDING', 'DISABLED', 'ENQUEUED', 'DELIVERED', 'EXPIRED']);

/**
 * A view's definition by name (unknown names give the first view).
 * @param {string|null|undefined} name
 * @returns {ViewDef}
 */
export function viewByName(name) {
  return VIEWS.find((view) => view.name === name) ?? VIEWS[0];
}

/**
 * A column by key within a view, or null.
 * @param {ViewDef} view
 * @param {string|null|undefined} key
 * @returns {Column|null}
 */
export function columnByKey(view, key) {
  return view.columns.find((column) => column.key === key) ?? null;
}

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
    case 'number':
    case 'latency':
      return typeof value === 'number' ? value : Number.NEGATIVE_INFINITY;
    case 'bool':
      return value ? 1 : 0;
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
