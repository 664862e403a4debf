// The three views rtm shows (after the original PSOM pages): their tables, titles, columns,
// filters, search fields and default order. Data, the lookups into it, and the two things a
// definition says: a wall display's version of a view and what a link cell opens.

import { PROBLEMS, SOON } from './columns.js';

/**
 * @typedef {{key: string, label: string, kind?: string, width?: string, link?: string,
 *   from?: string, kiosk?: boolean, hint?: string, rank?: number}} Column  kiosk: false hides
 *   the column on wall displays; hint: what the header's tooltip explains; rank: how useful
 *   (1 most) when a narrow grid must drop columns (fit.js), none: never dropped
 * @typedef {{key: string, value: string, label: string, hint: string}} Toggle  a checkbox in
 *   the toolbar setting filter `key` to `value` (URL `key=value`), e.g. problems only
 * @typedef {{name: string, table: string, label: string, title: string, empty: string, short: string,
 *   sort: {key: string, dir: 'asc'|'desc'}, filters: string[], search: string[],
 *   columns: Column[], expiring?: boolean, wallSort?: {key: string, dir: 'asc'|'desc'},
 *   toggles?: Toggle[]}} ViewDef
 *   wallSort: the default order on a wall display, problems first
 */

/** @type {ViewDef[]} */
export const VIEWS = [
  {
    name: 'accounts',
    table: 'accounts',
    label: 'Registered Accounts',
    title: 'Registered Accounts',
    empty: 'No registered contacts.',
    short: 'Accounts',
    sort: { key: 'username', dir: 'asc' },
    filters: ['group', 'transport'],
    search: ['domain', 'contact'],
    expiring: true,
    toggles: [{ key: 'expires', value: SOON, label: 'Expiring soon', hint: 'Only contacts with less than a minute left' }],
    columns: [
      { key: 'username', label: 'Username', width: 'm', link: 'account' },
      { key: 'owner', label: 'Owner', width: 'm', rank: 2 },
      { key: 'caller_id', label: 'Caller Id', width: 'phone', rank: 3 },
      { key: 'caller_id_2', label: 'Caller Id 2', width: 'phone', kiosk: false, rank: 10 },
      { key: 'group', label: 'Group', width: 's', rank: 7 },
      { key: 'ip', label: 'IpAddr', width: 'ip', rank: 4 },
      { key: 'port', label: 'Port', kind: 'number', width: 'port', kiosk: false, rank: 5 },
      { key: 'transport', label: 'Transport', width: 'xs', rank: 6 },
      { key: 'expires', label: 'Registration Expires', kind: 'time', width: 'l', kiosk: false, rank: 9 },
      { key: 'remaining', label: 'Remaining', kind: 'remaining', from: 'expires', width: 's', rank: 1 },
      { key: 'user_agent', label: 'UserAgent', width: 'rest', rank: 8 },
      // Last, so the other columns keep their places (a single source: Kamailio's server_id).
      { key: 'node', label: 'Node', width: 's', kiosk: false, rank: 11, hint: 'The SIP node the contact registered on' },
    ],
  },
  {
    name: 'trunks',
    table: 'trunks',
    label: 'Sip trunk status',
    title: 'Sip trunk status',
    empty: 'No trunks configured.',
    short: 'Trunks',
    sort: { key: 'name', dir: 'asc' },
    wallSort: { key: 'status', dir: 'asc' },
    filters: ['status', 'transport'],
    toggles: [{ key: 'status', value: PROBLEMS, label: 'Problems only', hint: 'Only trunks that are neither OK nor disabled' }],
    search: [],
    columns: [
      { key: 'host', label: 'Host', width: 'rest', rank: 3 },
      { key: 'name', label: 'Name', width: 'm' },
      { key: 'virtual_number', label: 'Virtual Phone Number', width: 'phone', rank: 5 },
      { key: 'username', label: 'Username', width: 's', kiosk: false, rank: 9 },
      { key: 'transport', label: 'Transport', width: 'xs', rank: 6 },
      { key: 'encryption', label: 'Encryption', kind: 'bool', width: 's', kiosk: false, rank: 8 },
      { key: 'status', label: 'Status', kind: 'status', width: 'm' },
      { key: 'reason', label: 'Reason', width: 'rest', rank: 2 },
      { key: 'since', label: 'Since', kind: 'time', width: 'l', kiosk: false, rank: 7 },
      { key: 'for', label: 'For', kind: 'age', from: 'since', width: 's', hint: 'How long the trunk has had this status', rank: 1 },
      { key: 'latency_ms', label: 'Latency', kind: 'latency', width: 'xs', rank: 4 },
      { key: 'node', label: 'Node', width: 's', kiosk: false, rank: 10, hint: 'The SIP node reporting this trunk' },
    ],
  },
  {
    name: 'queue',
    table: 'queue',
    label: 'Message Queue',
    title: 'Message List',
    empty: 'The queue is empty.',
    short: 'Queue',
    sort: { key: 'received', dir: 'desc' },
    wallSort: { key: 'received', dir: 'asc' },
    // No Status filter: every queued message is ENQUEUED, a one-option list filters nothing.
    filters: [],
    search: ['uuid', 'from_account', 'to_account'],
    columns: [
      { key: 'received', label: 'Received', kind: 'time-ms', width: 'ms', link: 'message' },
      { key: 'age', label: 'Age', kind: 'age', from: 'received', width: 's', hint: 'How long the message has waited', rank: 1 },
      { key: 'from', label: 'From', width: 'm', rank: 2 },
      { key: 'to', label: 'To', width: 'm', rank: 3 },
      { key: 'status', label: 'Status', kind: 'status', width: 'm', rank: 5 },
      { key: 'sent', label: 'Sent', kind: 'number', width: 'xs', hint: 'Delivery attempts so far', rank: 4 },
    ],
  },
];

/**
 * A view's definition by name (unknown names give the first view).
 * @param {string|null|undefined} name
 * @returns {ViewDef}
 */
export function viewByName(name) {
  return VIEWS.find((view) => view.name === name) ?? VIEWS[0];
}

/**
 * The filter keys a view's state holds: its drop-downs' and its toggles'.
 * @param {ViewDef} view
 * @returns {string[]}
 */
export function filterKeys(view) {
  return [...new Set([...view.filters, ...(view.toggles ?? []).map((toggle) => toggle.key)])];
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
 * A view as a wall display shows it: without the less important columns (so large type still
 * fits) and problems first (failed trunks, the longest-waiting messages).
 * @param {ViewDef} view
 * @returns {ViewDef}
 */
export function wallView(view) {
  return { ...view, columns: view.columns.filter((c) => c.kiosk !== false), sort: view.wallSort ?? view.sort };
}

/**
 * What a link cell opens: the row's account (by username) or its queued message (by id).
 * @param {Column} column a column with `link`
 * @param {Record<string, any>} row
 * @returns {import('./session.js').DetailsTarget}
 */
export function linkTarget(column, row) {
  return column.link === 'account' ? { kind: 'account', key: String(row.username ?? '') } : { kind: 'message', key: String(row.id) };
}
