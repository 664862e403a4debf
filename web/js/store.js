// One table's rows as the server last described them, kept in step by snapshots and diffs.

/**
 * What one snapshot or diff changed; listeners use it to flash cells and to decide whether
 * the sorted index must be rebuilt.
 * @typedef {{reset: boolean, added: Set<string>, removed: Set<string>,
 *   changed: Map<string, Set<string>>, removedRows?: Map<string, Record<string, any>>}} Change
 * removedRows: the last state of deleted rows (a registration that left at expiry fades out).
 */

/** Rows keyed by id (as strings), the table's seq, and snapshot pages being accumulated. */
export class TableStore {
  /**
   * @param {string} name wire table name
   */
  constructor(name) {
    this.name = name;
    /** @type {Map<string, Record<string, any>>} */
    this.rows = new Map();
    /** @type {number|null} */
    this.seq = null;
    /** @type {Map<string, Record<string, any>>|null} */
    this.pending = null;
    this.ready = false;
    // While the rows are only a preview (a view's first screen, GET /api/<table>?first=N):
    // how many rows the whole table has. Null once a snapshot is in, or with no preview.
    /** @type {number|null} */
    this.previewOf = null;
    /** @type {Array<(change: Change) => void>} */
    this.listeners = [];
  }

  /**
   * Call `listener` after every applied snapshot and diff.
   * @param {(change: Change) => void} listener
   */
  subscribe(listener) {
    this.listeners.push(listener);
  }

  /** Forget a half-received snapshot (the connection dropped mid-way). */
  abortSnapshot() {
    this.pending = null;
  }

  /**
   * Accumulate a snapshot page; the rows are swapped in when the final page arrives, so the
   * page never shows a half-loaded table.
   * @param {{seq: number, rows: unknown, final: boolean}} msg
   */
  applySnapshot(msg) {
    if (!this.pending) this.pending = new Map();
    for (const row of Array.isArray(msg.rows) ? msg.rows : []) {
      if (row && typeof row === 'object' && row.id !== undefined) {
        this.pending.set(String(row.id), row);
      }
    }
    if (!msg.final) return;
    this.rows = this.pending;
    this.pending = null;
    this.seq = msg.seq;
    this.ready = true;
    this.previewOf = null;
    this.emit({ reset: true, added: new Set(), removed: new Set(), changed: new Map() });
  }

  /**
   * Show a view's first rows before the whole table has arrived. Only a store that holds
   * nothing yet takes one: it stays not ready (no counts, no alarms, no diffs) until the
   * snapshot replaces it.
   * @param {unknown} rows
   * @param {number} total the whole table's row count
   */
  applyPreview(rows, total) {
    if (this.ready) return;
    /** @type {Map<string, Record<string, any>>} */
    const preview = new Map();
    for (const row of Array.isArray(rows) ? rows : []) {
      if (row && typeof row === 'object' && row.id !== undefined) preview.set(String(row.id), row);
    }
    this.rows = preview;
    this.previewOf = total;
    this.emit({ reset: true, added: new Set(), removed: new Set(), changed: new Map() });
  }

  /**
   * Apply a diff: deletes first, then upserts (an id in both is a replacement).
   * @param {{seq: number, upsert?: unknown, delete?: unknown}} msg
   * @returns {'applied'|'old'|'gap'} "gap" means rows were missed: resume from the server
   */
  applyDiff(msg) {
    if (this.seq === null || this.pending !== null) return 'gap';
    if (msg.seq <= this.seq) return 'old';
    if (msg.seq !== this.seq + 1) return 'gap';
    /** @type {Map<string, Record<string, any>>} */
    const removedRows = new Map();
    /** @type {Change} */
    const change = { reset: false, added: new Set(), removed: new Set(), changed: new Map(), removedRows };
    const deleted = new Set();
    for (const rawId of Array.isArray(msg.delete) ? msg.delete : []) {
      const id = String(rawId);
      const row = this.rows.get(id);
      if (row && this.rows.delete(id)) {
        deleted.add(id);
        change.removed.add(id);
        removedRows.set(id, row);
      }
    }
    for (const row of Array.isArray(msg.upsert) ? msg.upsert : []) {
      if (row && typeof row === 'object' && row.id !== undefined) this.upsert(row, deleted, change);
    }
    this.seq = msg.seq;
    this.emit(change);
    return 'applied';
  }

  /**
   * Merge one upserted row, recording what changed.
   * @param {Record<string, any>} row
   * @param {Set<string>} deleted ids deleted by the same diff
   * @param {Change} change
   */
  upsert(row, deleted, change) {
    const id = String(row.id);
    const existing = this.rows.get(id);
    if (!existing) {
      this.rows.set(id, { ...row });
      change.removed.delete(id);
      change.removedRows?.delete(id);
      change.added.add(id);
      if (deleted.has(id)) change.changed.set(id, new Set(Object.keys(row)));
      return;
    }
    // The same id twice in one diff: keep every field either upsert changed.
    const fields = change.changed.get(id) ?? new Set();
    for (const [key, value] of Object.entries(row)) {
      if (existing[key] !== value) {
        existing[key] = value;
        fields.add(key);
      }
    }
    if (fields.size) change.changed.set(id, fields);
  }

  /**
   * Notify listeners.
   * @param {Change} change
   */
  emit(change) {
    for (const listener of this.listeners) listener(change);
  }
}
