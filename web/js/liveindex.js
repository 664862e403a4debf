// A view's ordered ids kept up to date incrementally (the full build is rowindex.js).

import { sortValue } from './columns.js';
import { FADE_SECONDS, expiresAt, goneAt, isGone } from './expiry.js';
import { affectsIndex, buildIndex, compareKeys, matchesText, searchFields, sortColumn } from './rowindex.js';

/** @typedef {import('./rowindex.js').ViewState} ViewState */

/**
 * A view's ordered ids, kept up to date incrementally: a diff touching a few rows costs a few
 * binary searches and array splices instead of filtering and sorting the whole table, and
 * expiries leave through a queue ordered by expiry time. A full rebuild (buildIndex) is only
 * needed after a snapshot, a sort/filter change or a very large diff.
 */
export class LiveIndex {
  /**
   * @param {import('./columns.js').ViewDef} view
   */
  constructor(view) {
    this.view = view;
    /** @type {string[]} */
    this.ids = [];
    /** @type {Set<string>} */
    this.members = new Set();
    /** @type {Record<string, Set<string>>} */
    this.choices = {};
    // [expiry + fade, id] of members, latest first, so the next to leave pops off the end.
    /** @type {Array<[number, string]>} */
    this.leaving = [];
    // Rows the server deleted at their expiry, kept on screen until their fade-out ends.
    /** @type {Map<string, Record<string, any>>} */
    this.ghosts = new Map();
    // The order ids are in (set by rebuild): the sort column and 1 ascending / -1 descending.
    this.column = view.columns[0];
    this.sign = 1;
  }

  /**
   * A shown row: from the store, or a fading ghost.
   * @param {Map<string, Record<string, any>>} rows
   * @param {string} id
   * @returns {Record<string, any>|undefined}
   */
  row(rows, id) {
    return rows.get(id) ?? this.ghosts.get(id);
  }

  /**
   * When the next member leaves by expiry (unix seconds), or Infinity.
   * @returns {number}
   */
  get nextChange() {
    return this.leaving.length ? this.leaving[this.leaving.length - 1][0] : Number.POSITIVE_INFINITY;
  }

  /**
   * Rebuild from scratch.
   * @param {Map<string, Record<string, any>>} rows
   * @param {ViewState} state
   * @param {number} now
   */
  rebuild(rows, state, now) {
    const built = buildIndex(rows, this.view, state, now);
    this.column = sortColumn(this.view, state);
    this.sign = state.dir === 'desc' ? -1 : 1;
    this.ids = built.ids;
    this.members = new Set(built.ids);
    this.choices = Object.fromEntries(Object.entries(built.choices).map(([k, v]) => [k, new Set(v)]));
    this.leaving = [];
    this.ghosts.clear();
    if (!this.view.expiring) return;
    for (const id of built.ids) {
      const gone = goneAt(/** @type {Record<string, any>} */ (rows.get(id)));
      if (gone !== null) this.leaving.push([gone, id]);
    }
    this.leaving.sort((a, b) => b[0] - a[0]);
  }

  /**
   * Apply one store change in place.
   * @param {import('./store.js').Change} change
   * @param {Map<string, Record<string, any>>} rows
   * @param {ViewState} state
   * @param {number} now
   * @returns {boolean} false when the change is too large: rebuild instead
   */
  apply(change, rows, state, now) {
    /** @type {Set<string>} */
    const touched = new Set([...change.added, ...change.removed]);
    for (const [id, fields] of change.changed) if (affectsIndex(fields, this.view, state)) touched.add(id);
    if (touched.size > Math.max(256, this.ids.length / 20)) return false;
    for (const [id, row] of change.removedRows ?? []) {
      if (this.fadesOut(id, row, now)) {
        this.ghosts.set(id, row);
        touched.delete(id);
      }
    }
    const members = [...touched].filter((id) => this.members.has(id));
    // A row whose sort key this diff changed (or a fading ghost whose id came back) is out of
    // place: find it by a scan, first, so the binary searches for the others see a sorted array.
    const field = this.column.from ?? this.column.key;
    const moved = members.filter((id) => change.added.has(id) || change.changed.get(id)?.has(field));
    this.remove(moved);
    this.removeSorted(members.filter((id) => this.members.has(id)), rows, change.removedRows);
    for (const id of touched) {
      const row = rows.get(id);
      if (row && this.accepts(row, state, now)) this.insert(id, row, rows, this.column, this.sign);
    }
    return true;
  }

  /**
   * Remove members that are in their sorted place: a binary search each (under their last
   * state, from `removedRows` for deleted ones), so one change costs O(log n) to find rather
   * than a scan of 100k ids. Many at once cost one filter pass instead.
   * @param {string[]} ids
   * @param {Map<string, Record<string, any>>} rows
   * @param {Map<string, Record<string, any>>} [removedRows]
   */
  removeSorted(ids, rows, removedRows) {
    if (ids.length >= 32) return this.remove(ids);
    // Rows this diff deleted are still in the array until their turn: look them up too.
    /** @type {(id: string) => Record<string, any>|undefined} */
    const rowOf = (id) => this.row(rows, id) ?? removedRows?.get(id);
    for (const id of ids) {
      const row = removedRows?.get(id) ?? this.row(rows, id);
      const at = row ? this.locate(id, sortValue(this.column, row), rowOf) : -1;
      if (at < 0) {
        this.remove([id]);
        continue;
      }
      this.ids.splice(at, 1);
      this.members.delete(id);
      this.ghosts.delete(id);
    }
  }

  /**
   * The position of `id` placed under sort key `key`, or -1.
   * @param {string} id
   * @param {number|string} key
   * @param {(id: string) => Record<string, any>|undefined} rowOf
   * @returns {number}
   */
  locate(id, key, rowOf) {
    const at = this.lowerBound(id, key, rowOf, this.column, this.sign);
    return this.ids[at] === id ? at : -1;
  }

  /**
   * The first position whose row sorts at or after (key, id).
   * @param {string} id
   * @param {number|string} key
   * @param {(id: string) => Record<string, any>|undefined} rowOf
   * @param {import('./columns.js').Column} column
   * @param {number} sign
   * @returns {number}
   */
  lowerBound(id, key, rowOf, column, sign) {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.ids[mid];
      const otherRow = rowOf(other);
      // A row missing from every map cannot be placed: fall back to a scan (locate gives -1).
      if (!otherRow) return -1;
      if (compareKeys(key, id, sortValue(column, otherRow), other, sign) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Whether a deleted row is a registration that just expired and should fade out first.
   * @param {string} id
   * @param {Record<string, any>} row its last state
   * @param {number} now
   * @returns {boolean}
   */
  fadesOut(id, row, now) {
    if (!this.view.expiring || !this.members.has(id)) return false;
    const t = expiresAt(row);
    // Two seconds of slack: the server's expiry sweep and this page's clock differ a little.
    return t !== null && t <= now + 2 && t + FADE_SECONDS > now;
  }

  /**
   * Drop members whose expiry (plus fade) has passed.
   * @param {Map<string, Record<string, any>>} rows
   * @param {number} now
   * @returns {boolean} whether any left
   */
  prune(rows, now) {
    const gone = [];
    while (this.leaving.length && this.leaving[this.leaving.length - 1][0] <= now) {
      const [, id] = /** @type {[number, string]} */ (this.leaving.pop());
      const row = rows.get(id);
      // A stale entry (the contact re-registered and was re-queued) is skipped.
      if (this.members.has(id) && (!row || isGone(row, now))) gone.push(id);
    }
    this.removeSorted(gone, rows);
    return gone.length > 0;
  }

  /**
   * Whether a row belongs in the view: live and passing the filters.
   * @param {Record<string, any>} row
   * @param {ViewState} state
   * @param {number} now
   * @returns {boolean}
   */
  accepts(row, state, now) {
    if (this.view.expiring && isGone(row, now)) return false;
    for (const [key, value] of Object.entries(state.filters)) {
      if (value !== '' && String(row[key] ?? '') !== value) return false;
    }
    const needle = state.q.trim().toLowerCase();
    return !needle || matchesText(row, searchFields(this.view), needle);
  }

  /**
   * Remove members wherever they are (a scan each for a few, one filter pass for many).
   * @param {string[]} ids
   */
  remove(ids) {
    if (!ids.length) return;
    if (ids.length < 32) {
      for (const id of ids) {
        const at = this.ids.indexOf(id);
        if (at >= 0) this.ids.splice(at, 1);
      }
    } else {
      const gone = new Set(ids);
      this.ids = this.ids.filter((id) => !gone.has(id));
    }
    for (const id of ids) {
      this.members.delete(id);
      this.ghosts.delete(id);
    }
  }

  /**
   * Insert a row at its sorted place (binary search on the current order).
   * @param {string} id
   * @param {Record<string, any>} row
   * @param {Map<string, Record<string, any>>} rows
   * @param {import('./columns.js').Column} column
   * @param {number} sign
   */
  insert(id, row, rows, column, sign) {
    const found = this.lowerBound(id, sortValue(column, row), (other) => this.row(rows, other), column, sign);
    // Only -1 if an id lost its row, which apply's removals rule out; append rather than throw.
    const lo = found < 0 ? this.ids.length : found;
    this.ids.splice(lo, 0, id);
    this.members.add(id);
    for (const filter of this.view.filters) {
      const value = String(row[filter] ?? '');
      if (value) (this.choices[filter] ??= new Set()).add(value);
    }
    const gone = this.view.expiring ? goneAt(row) : null;
    if (gone === null) return;
    const entry = /** @type {[number, string]} */ ([gone, id]);
    let a = 0;
    let b = this.leaving.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (this.leaving[mid][0] > entry[0]) a = mid + 1;
      else b = mid;
    }
    this.leaving.splice(a, 0, entry);
  }
}
