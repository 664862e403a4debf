// The ordered list of row ids a view shows: live rows that pass the filters, sorted by the
// chosen column. Built from scratch (buildIndex) after a snapshot or a sort or filter change,
// and kept up to date by diffs and expiries in between (LiveIndex), with one ordering and one
// idea of membership for both.

import { passesFilter, sortValue } from './columns.js';
import { FADE_SECONDS, expiresAt, goneAt, isGone, shownUntil } from './expiry.js';
import { columnByKey } from './viewdefs.js';

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
function matchesText(row, fields, needle) {
  for (const field of fields) {
    const value = row[field];
    if (value !== null && value !== undefined && String(value).toLowerCase().includes(needle)) {
      return true;
    }
  }
  return false;
}

// Columns whose text is a time or a clock-driven duration: nobody types them into a search.
const LIVE_KINDS = ['time', 'time-ms', 'remaining', 'age'];

// Each view's searched fields, worked out once: they are asked for per changed row of a diff.
/** @type {WeakMap<import('./viewdefs.js').ViewDef, string[]>} */
const searchFieldsOf = new WeakMap();

/**
 * Fields the filter box searches in a view (times and countdowns are left out: they are not
 * what people type, and formatting 100k times per keystroke is not free). Shared: read only.
 * @param {import('./viewdefs.js').ViewDef} view
 * @returns {string[]}
 */
function searchFields(view) {
  let fields = searchFieldsOf.get(view);
  if (!fields) {
    const shown = view.columns.filter((c) => !LIVE_KINDS.includes(c.kind ?? ''));
    fields = [...shown.map((c) => c.key), ...view.search];
    searchFieldsOf.set(view, fields);
  }
  return fields;
}

/**
 * A view state's filters as one test of a row: the per-column filters, then the filter box.
 * Whether the row is still live (its expiry) is the caller's to check: the full build also
 * needs when it leaves.
 * @param {import('./viewdefs.js').ViewDef} view
 * @param {ViewState} state
 * @param {number} now server unix seconds (a filter may depend on the clock)
 * @returns {(row: Record<string, any>) => boolean}
 */
function rowFilter(view, state, now) {
  const active = Object.entries(state.filters).filter(([, value]) => value !== '');
  const needle = state.q.trim().toLowerCase();
  const fields = searchFields(view);
  return (row) => active.every(([key, value]) => passesFilter(row, key, value, now))
    && (!needle || matchesText(row, fields, needle));
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
function compareKeys(keyA, idA, keyB, idB, sign) {
  if (keyA < keyB) return -sign;
  if (keyA > keyB) return sign;
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}

/**
 * The column a view is sorted by: the chosen one, else the view's default, else its first.
 * @param {import('./viewdefs.js').ViewDef} view
 * @param {ViewState} state
 * @returns {import('./viewdefs.js').Column}
 */
function sortColumn(view, state) {
  return columnByKey(view, state.sort) ?? columnByKey(view, view.sort.key) ?? view.columns[0];
}

/**
 * The sign compareKeys takes for a view state's direction.
 * @param {ViewState} state
 * @returns {number} 1 ascending, -1 descending
 */
function directionSign(state) {
  return state.dir === 'desc' ? -1 : 1;
}

/**
 * Build the view's index from all rows.
 * @param {Map<string, Record<string, any>>} rows
 * @param {import('./viewdefs.js').ViewDef} view
 * @param {ViewState} state
 * @param {number} now server unix seconds
 * @returns {RowIndex}
 */
export function buildIndex(rows, view, state, now) {
  const column = sortColumn(view, state);
  const passes = rowFilter(view, state, now);
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
    if (!passes(row)) continue;
    ids.push(id);
    keys.push(sortValue(column, row));
  }
  const sign = directionSign(state);
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
 * @param {import('./viewdefs.js').ViewDef} view
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

/**
 * A view's ordered ids, kept up to date incrementally: a diff touching a few rows costs a few
 * binary searches and array splices instead of filtering and sorting the whole table, and
 * expiries leave through a queue ordered by expiry time. A full rebuild (buildIndex) is only
 * needed after a snapshot, a sort/filter change or a very large diff.
 */
export class LiveIndex {
  /**
   * @param {import('./viewdefs.js').ViewDef} view
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
    this.sign = directionSign(state);
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
    const passes = rowFilter(this.view, state, now);
    for (const id of touched) {
      const row = rows.get(id);
      if (row && !(this.view.expiring && isGone(row, now)) && passes(row)) this.insert(id, row, rows);
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
    const at = this.lowerBound(id, key, rowOf);
    return this.ids[at] === id ? at : -1;
  }

  /**
   * The first position whose row sorts at or after (key, id) in the current order.
   * @param {string} id
   * @param {number|string} key
   * @param {(id: string) => Record<string, any>|undefined} rowOf
   * @returns {number}
   */
  lowerBound(id, key, rowOf) {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = this.ids[mid];
      const otherRow = rowOf(other);
      // A row missing from every map cannot be placed: fall back to a scan (locate gives -1).
      if (!otherRow) return -1;
      if (compareKeys(key, id, sortValue(this.column, otherRow), other, this.sign) > 0) lo = mid + 1;
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
   */
  insert(id, row, rows) {
    const found = this.lowerBound(id, sortValue(this.column, row), (other) => this.row(rows, other));
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
    // A re-registration queues a new entry and leaves its old one behind (skipped when it
    // comes up, maybe an hour later): drop those once they outnumber the members, so a tab
    // following 200 re-registrations a second for weeks holds one entry per row, not per write.
    if (this.leaving.length > 2 * this.members.size + 1024) this.compactLeaving(rows);
  }

  /**
   * Keep only the entries of members at their current expiry (amortised O(1) per insert).
   * @param {Map<string, Record<string, any>>} rows
   */
  compactLeaving(rows) {
    this.leaving = this.leaving.filter(([gone, id]) => {
      const row = this.members.has(id) ? this.row(rows, id) : undefined;
      return row !== undefined && goneAt(row) === gone;
    });
  }
}
