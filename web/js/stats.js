// The headline numbers, computed from the stores: what the tiles and view titles show.

import { parseTime, plural } from './format.js';
import { shownUntil } from './expiry.js';

/**
 * @typedef {{users: number, contacts: number, nextChange: number,
 *   trunksOk: number, trunksTotal: number, trunksFailed: FailedTrunk[], trunksPending: string[],
 *   trunksDisabled: number, queueDepth: number, oldestReceived: number|null}} Stats
 * @typedef {{name: string, since: number|null}} FailedTrunk  since: when it went down
 */

// The fields each table's numbers below are computed from: a diff changing none of them (a
// User-Agent, a latency) needs no recount, which at 100k contacts is a pass over every row.
/** @type {Record<string, string[]>} */
const STATS_FIELDS = { accounts: ['username', 'expires'], trunks: ['status', 'name', 'since'], queue: ['received'] };

/**
 * Whether a store change can change the table's headline numbers.
 * @param {string} table
 * @param {import('./store.js').Change} change
 * @returns {boolean}
 */
export function changesStats(table, change) {
  if (change.reset || change.added.size || change.removed.size) return true;
  const fields = STATS_FIELDS[table] ?? [];
  for (const changed of change.changed.values()) if (fields.some((field) => changed.has(field))) return true;
  return false;
}

/**
 * Registered users (distinct usernames) and contacts that have not expired.
 * @param {Map<string, Record<string, any>>} rows
 * @param {number} now
 * @returns {{users: number, contacts: number, nextChange: number}}
 */
export function accountStats(rows, now) {
  const users = new Set();
  let contacts = 0;
  let nextChange = Number.POSITIVE_INFINITY;
  for (const row of rows.values()) {
    const until = shownUntil(row, now);
    if (until === null) continue;
    nextChange = Math.min(nextChange, until);
    contacts += 1;
    users.add(row.username);
  }
  return { users: users.size, contacts, nextChange };
}

/**
 * Registered users and contacts kept up to date diff by diff, so a re-registration (a new
 * expires) at 100k contacts costs O(diff) instead of a recount. A full count runs after a
 * snapshot and when an expiry passes (`nextChange`); between those, rows only change by diffs.
 * Counts what accountStats counts (the from-scratch reference, tested against this).
 */
export class AccountCounter {
  /** Empty: nothing counted until the first recount or diff. */
  constructor() {
    /** @type {Map<unknown, number>} live contacts per username */
    this.users = new Map();
    /** @type {Map<string, unknown>} id -> username of each contact counted as live */
    this.counted = new Map();
    // The earliest expiry (+ fade) among counted rows; only lowered between recounts, so a
    // stale value costs one early recount, never a missed expiry.
    this.nextChange = Number.POSITIVE_INFINITY;
  }

  /**
   * Count every row from scratch.
   * @param {Map<string, Record<string, any>>} rows
   * @param {number} now
   */
  recount(rows, now) {
    this.users.clear();
    this.counted.clear();
    this.nextChange = Number.POSITIVE_INFINITY;
    for (const [id, row] of rows) this.add(id, row, now);
  }

  /**
   * Follow one store change (a snapshot recounts).
   * @param {import('./store.js').Change} change
   * @param {Map<string, Record<string, any>>} rows
   * @param {number} now
   */
  apply(change, rows, now) {
    if (change.reset) return this.recount(rows, now);
    for (const id of change.removed) this.drop(id);
    const touched = [...change.added];
    for (const [id, fields] of change.changed) if (fields.has('username') || fields.has('expires')) touched.push(id);
    for (const id of touched) {
      this.drop(id);
      const row = rows.get(id);
      if (row) this.add(id, row, now);
    }
  }

  /**
   * Count a row if it has not expired and faded.
   * @param {string} id
   * @param {Record<string, any>} row
   * @param {number} now
   */
  add(id, row, now) {
    const until = shownUntil(row, now);
    if (until === null) return;
    this.nextChange = Math.min(this.nextChange, until);
    this.counted.set(id, row.username);
    this.users.set(row.username, (this.users.get(row.username) ?? 0) + 1);
  }

  /**
   * Stop counting a row (if it was counted).
   * @param {string} id
   */
  drop(id) {
    if (!this.counted.has(id)) return;
    const username = this.counted.get(id);
    this.counted.delete(id);
    const left = (this.users.get(username) ?? 1) - 1;
    if (left > 0) this.users.set(username, left);
    else this.users.delete(username);
  }

  /**
   * The numbers accountStats gives.
   * @returns {{users: number, contacts: number, nextChange: number}}
   */
  counts() {
    return { users: this.users.size, contacts: this.counted.size, nextChange: this.nextChange };
  }
}

/**
 * Trunks by status. DISABLED trunks are switched off on purpose: they count neither as OK nor
 * as an alarm, and are left out of the total.
 * @param {Map<string, Record<string, any>>} rows
 * @returns {{trunksOk: number, trunksTotal: number, trunksFailed: FailedTrunk[], trunksPending: string[], trunksDisabled: number}}
 */
function trunkStats(rows) {
  let ok = 0;
  let disabled = 0;
  const failed = [];
  const pending = [];
  for (const row of rows.values()) {
    const status = String(row.status ?? '').toUpperCase();
    if (status === 'OK') ok += 1;
    else if (status === 'DISABLED') disabled += 1;
    else if (status === 'PENDING') pending.push(String(row.name ?? row.id));
    else failed.push({ name: String(row.name ?? row.id), since: parseTime(row.since) });
  }
  return {
    trunksOk: ok, trunksTotal: rows.size - disabled,
    trunksFailed: failed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    trunksPending: pending.sort(), trunksDisabled: disabled,
  };
}

/**
 * Queue depth and when the oldest queued message was received.
 * @param {Map<string, Record<string, any>>} rows
 * @returns {{queueDepth: number, oldestReceived: number|null}}
 */
function queueStats(rows) {
  let oldest = Number.POSITIVE_INFINITY;
  for (const row of rows.values()) {
    const t = parseTime(row.received);
    if (t !== null && t < oldest) oldest = t;
  }
  return { queueDepth: rows.size, oldestReceived: Number.isFinite(oldest) ? oldest : null };
}

/**
 * The words after each view's title ("2 registered users"), by table; empty while a table has
 * not been read yet (no false "0 registered users" at start-up).
 * @param {Stats} s
 * @param {Record<string, boolean>} ready by table
 * @returns {Record<string, string>}
 */
export function headlines(s, ready) {
  return {
    accounts: ready.accounts ? plural(s.users, 'registered user') : '',
    trunks: ready.trunks ? `${s.trunksOk} of ${s.trunksTotal} OK` : '',
    queue: ready.queue ? plural(s.queueDepth, 'message') : '',
  };
}

/**
 * The headline numbers of all three tables, kept current as the stores change: registrations
 * counted diff by diff (AccountCounter), trunks and the queue recounted when a counted field
 * changed, every recount in idle time. Costs O(diff) per change: at 100k contacts a
 * re-registration must not cost a recount.
 */
export class LiveStats {
  /**
   * @param {Map<string, import('./store.js').TableStore>} stores
   * @param {() => number} now server unix seconds
   * @param {() => void} onChange the numbers changed: tiles and headlines need redrawing
   */
  constructor(stores, now, onChange) {
    this.stores = stores;
    this.now = now;
    this.onChange = onChange;
    /** @type {Stats} */
    this.values = { users: 0, contacts: 0, nextChange: Infinity, trunksOk: 0, trunksTotal: 0, trunksFailed: [],
      trunksPending: [], trunksDisabled: 0, queueDepth: 0, oldestReceived: null };
    /** @type {Record<string, boolean>} tables whose numbers wait for a recount */
    this.dirty = { accounts: true, trunks: true, queue: true };
    this.accountCounter = new AccountCounter();
    this.recountPending = false;
    /** @type {Set<string>} tables whose source was never read since the server started */
    this.unread = new Set();
    this.recountWhenIdle();
  }

  /**
   * Follow one store change.
   * @param {string} table
   * @param {import('./store.js').Change} change
   */
  changed(table, change) {
    if (table === 'accounts' && !change.reset && !this.dirty.accounts) {
      // Registrations are counted diff by diff; a snapshot or a passed expiry recounts (in
      // idle time), and until then that pending recount covers every diff.
      this.accountCounter.apply(change, this.rows(table), this.now());
      Object.assign(this.values, this.accountCounter.counts());
      this.onChange();
    } else if (changesStats(table, change)) {
      this.dirty[table] = true;
      this.recountWhenIdle();
    }
  }

  /**
   * Once a second: a registration that expired (and faded) since the last count leaves it.
   * @param {number} now
   */
  tick(now) {
    if (now >= this.values.nextChange && !this.dirty.accounts) {
      this.dirty.accounts = true;
      this.recountWhenIdle();
    }
  }

  /**
   * Recount the changed tables when the browser is idle (at most 0.5 s later): at 100k
   * contacts a recount costs ~10 ms, which must not land in a scrolling frame.
   */
  recountWhenIdle() {
    if (this.recountPending) return;
    this.recountPending = true;
    const run = () => {
      this.recountPending = false;
      this.recount(this.now());
      this.onChange();
    };
    if (typeof requestIdleCallback === 'function') requestIdleCallback(run, { timeout: 500 });
    else setTimeout(run, 50);
  }

  /**
   * Recompute the numbers of the tables that changed.
   * @param {number} now
   */
  recount(now) {
    if (this.dirty.accounts) {
      this.accountCounter.recount(this.rows('accounts'), now);
      Object.assign(this.values, this.accountCounter.counts());
    }
    if (this.dirty.trunks) Object.assign(this.values, trunkStats(this.rows('trunks')));
    if (this.dirty.queue) Object.assign(this.values, queueStats(this.rows('queue')));
    this.dirty = { accounts: false, trunks: false, queue: false };
  }

  /**
   * Which tables have been read at least once (their numbers mean something).
   * @returns {Record<string, boolean>}
   */
  ready() {
    /** @type {Record<string, boolean>} */
    const ready = {};
    for (const [name, store] of this.stores) ready[name] = store.ready && !this.unread.has(name);
    return ready;
  }

  /**
   * Follow a source message: a table whose source was never read successfully since the
   * server started holds no reading, so its tiles and headline must not show a zero.
   * @param {{table: string, read?: boolean}} msg
   */
  source(msg) {
    const before = this.unread.size;
    if (msg.read === false) this.unread.add(String(msg.table));
    else this.unread.delete(String(msg.table));
    if (this.unread.size !== before) this.onChange();
  }

  /**
   * A table's rows.
   * @param {string} table
   * @returns {Map<string, Record<string, any>>}
   */
  rows(table) {
    return /** @type {import('./store.js').TableStore} */ (this.stores.get(table)).rows;
  }
}
