// The headline numbers, computed from the stores: what the tiles and view titles show.

import { parseTime } from './format.js';
import { expiresAt, FADE_SECONDS } from './expiry.js';

/**
 * @typedef {{users: number, contacts: number, nextChange: number,
 *   trunksOk: number, trunksTotal: number, trunksFailed: string[], trunksPending: string[],
 *   trunksDisabled: number, queueDepth: number, oldestReceived: number|null}} Stats
 */

// The fields each table's numbers below are computed from: a diff changing none of them (a
// User-Agent, a latency) needs no recount, which at 100k contacts is a pass over every row.
/** @type {Record<string, string[]>} */
const STATS_FIELDS = { accounts: ['username', 'expires'], trunks: ['status', 'name'], queue: ['received'] };

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
    const t = expiresAt(row);
    if (t !== null) {
      if (t + FADE_SECONDS <= now) continue;
      nextChange = Math.min(nextChange, t + FADE_SECONDS);
    }
    contacts += 1;
    users.add(row.username);
  }
  return { users: users.size, contacts, nextChange };
}

/**
 * Trunks by status. DISABLED trunks are switched off on purpose: they count neither as OK nor
 * as an alarm, and are left out of the total.
 * @param {Map<string, Record<string, any>>} rows
 * @returns {{trunksOk: number, trunksTotal: number, trunksFailed: string[], trunksPending: string[], trunksDisabled: number}}
 */
export function trunkStats(rows) {
  let ok = 0;
  let disabled = 0;
  const failed = [];
  const pending = [];
  for (const row of rows.values()) {
    const status = String(row.status ?? '').toUpperCase();
    if (status === 'OK') ok += 1;
    else if (status === 'DISABLED') disabled += 1;
    else if (status === 'PENDING') pending.push(String(row.name ?? row.id));
    else failed.push(String(row.name ?? row.id));
  }
  return {
    trunksOk: ok, trunksTotal: rows.size - disabled, trunksFailed: failed.sort(),
    trunksPending: pending.sort(), trunksDisabled: disabled,
  };
}

/**
 * Queue depth and when the oldest queued message was received.
 * @param {Map<string, Record<string, any>>} rows
 * @returns {{queueDepth: number, oldestReceived: number|null}}
 */
export function queueStats(rows) {
  let oldest = Number.POSITIVE_INFINITY;
  for (const row of rows.values()) {
    const t = parseTime(row.received);
    if (t !== null && t < oldest) oldest = t;
  }
  return { queueDepth: rows.size, oldestReceived: Number.isFinite(oldest) ? oldest : null };
}
