// The three views rtm shows (after the original PSOM pages): their tables, titles, columns,
// filters, search fields and default order. Data, the lookups into it, and the two things a
// definition says: a wall display's version of a view and what a link cell opens.

/**
 * @typedef {{key: string, label: string, kind?: string, width?: string, link?: string,
 *   from?: string, kiosk?: boolean, hint?: string}} Column  kiosk: false hides the column on
 *   wall displays; hint: what the header's tooltip explains
 * @typedef {{name: string, table: string, label: string, title: string, empty: string, short: string,
 *   sort: {key: string, dir: 'asc'|'desc'}, filters: string[], search: string[],
 *   columns: Column[], expiring?: boolean, wallSort?: {key: string, dir: 'asc'|'desc'}}} ViewDef
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
    label: 'Sip trunk status',
    title: 'Sip trunk status',
    empty: 'No trunks configured.',
    short: 'Trunks',
    sort: { key: 'name', dir: 'asc' },
    wallSort: { key: 'status', dir: 'asc' },
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
      { key: 'since', label: 'Since', kind: 'time', width: 'l', kiosk: false },
      { key: 'for', label: 'For', kind: 'age', from: 'since', width: 's', hint: 'How long the trunk has had this status' },
      { key: 'latency_ms', label: 'Latency', kind: 'latency', width: 'xs' },
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
      { key: 'received', label: 'Received', kind: 'time-ms', width: 'l', link: 'message' },
      { key: 'age', label: 'Age', kind: 'age', from: 'received', width: 's', hint: 'How long the message has waited' },
      { key: 'from', label: 'From', width: 'm' },
      { key: 'to', label: 'To', width: 'm' },
      { key: 'status', label: 'Status', kind: 'status', width: 's' },
      { key: 'sent', label: 'Sent', kind: 'number', width: 'xs', hint: 'Delivery attempts so far' },
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
