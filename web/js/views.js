// One view (a table of the page): its toolbar (filter box, per-column filters, export), its
// headline and its virtual grid, and the lazily rebuilt index that orders the rows.

import { PROBLEMS, SOON } from './columns.js';
import { el, setText } from './dom.js';
import { formatCount } from './format.js';
import { Pager } from './paging.js';
import { LiveIndex } from './rowindex.js';
import { VirtualTable } from './table.js';
import { columnByKey } from './viewdefs.js';

// Rebuilding a 100k-row index takes tens of ms; when it is that slow, leave the frame budget
// to scrolling by rebuilding at most this many times the last cost apart.
const REBUILD_SPACING = 5;
// How many rows a view's preview asks for (a screen's worth; the server allows up to 1,000).
const PREVIEW_MIN = 40;
const PREVIEW_MAX = 200;

/** A view's controller. */
export class ViewController {
  /**
   * @param {{def: import('./viewdefs.js').ViewDef, store: import('./store.js').TableStore,
   *   state: import('./rowindex.js').ViewState, schedule: () => void,
   *   onStateChange: () => void, onOpen: (column: any, row: any) => void,
   *   onExport: (view: ViewController) => void,
   *   linkFor: (column: any, row: any) => string, now: () => number, paging?: boolean}} options
   *   now: server time; paging: a wall's, which shows a page at a time (paging.js)
   */
  constructor({ def, store, state, schedule, onStateChange, onOpen, onExport, linkFor, now, paging = false }) {
    this.def = def;
    this.store = store;
    this.state = state;
    this.schedule = schedule;
    this.onStateChange = onStateChange;
    this.active = false;
    this.dirty = true;
    this.indexChanged = false;
    this.now = now;
    this.nextRebuildAt = 0;
    this.index = new LiveIndex(def);
    /** @type {Map<string, Set<string>|null>} */
    this.flashes = new Map();
    const titleId = `${def.name}-title`;
    this.headline = el('span', { class: 'headline' });
    this.title = el('h2', { id: titleId }, def.title, this.headline);
    this.grid = new VirtualTable({
      view: def, labelId: titleId, schedule,
      onSort: (key) => this.sortBy(key), onOpen, linkFor,
    });
    this.grid.setSort(state.sort, state.dir);
    this.shown = el('span', { class: 'shown', 'aria-live': 'polite' });
    this.search = /** @type {HTMLInputElement} */ (el('input', {
      type: 'search', class: 'filter-box', placeholder: 'Filter…', 'aria-label': `Filter ${def.title}`,
      value: state.q, oninput: () => this.setFilterText(this.search.value),
    }));
    /** @type {Map<string, HTMLSelectElement>} */
    this.selects = new Map(def.filters.map((key) => [key, this.select(key)]));
    const exportButton = el('button', { type: 'button', class: 'btn', onclick: () => onExport(this) }, 'Export CSV');
    const labels = [...this.selects].map(([key, select]) => el('label', { class: 'column-filter' }, key[0].toUpperCase() + key.slice(1), select));
    /** @type {Map<string, HTMLInputElement>} */
    this.toggles = new Map((def.toggles ?? []).map((toggle) => [toggle.key, this.toggle(toggle)]));
    const toggleLabels = (def.toggles ?? []).map((toggle) => el('label', { class: 'toggle', title: toggle.hint },
      this.toggles.get(toggle.key), toggle.label));
    this.toolbar = el('div', { class: 'toolbar chrome' }, this.search, ...toggleLabels, ...labels, this.shown, exportButton);
    this.empty = el('p', { class: 'empty', role: 'status', text: 'Loading…' });
    this.pager = paging ? new Pager(this.grid) : null;
    if (this.pager) this.grid.scroller.classList.add('paged');
    this.section = el('section', { class: 'view', id: `view-${def.name}`, 'aria-labelledby': titleId, hidden: true },
      el('div', { class: 'view-head' }, this.title, this.pager?.label, this.toolbar), this.grid.scroller, this.empty,
      this.grid.tip.root);
    store.subscribe((change) => this.changed(change));
  }

  /**
   * A per-column filter drop-down ("all" plus the values present).
   * @param {string} key
   * @returns {HTMLSelectElement}
   */
  select(key) {
    const select = /** @type {HTMLSelectElement} */ (el('select', { 'data-filter': key }));
    select.append(el('option', { value: '' }, 'All'));
    if (key === 'status') select.append(el('option', { value: PROBLEMS }, 'Problems only'));
    const current = this.state.filters[key] ?? '';
    if (current && current !== PROBLEMS) select.append(el('option', { value: current }, current));
    select.value = current;
    select.addEventListener('change', () => this.setColumnFilter(key, select.value));
    return select;
  }

  /**
   * A toolbar checkbox that sets one filter to one value (e.g. status = problems).
   * @param {import('./viewdefs.js').Toggle} toggle
   * @returns {HTMLInputElement}
   */
  toggle(toggle) {
    const box = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', 'data-toggle': toggle.key }));
    box.checked = this.state.filters[toggle.key] === toggle.value;
    box.addEventListener('change', () => this.setColumnFilter(toggle.key, box.checked ? toggle.value : ''));
    return box;
  }

  /**
   * Keep a drop-down's options equal to the values present (plus the chosen one).
   * @param {HTMLSelectElement} select
   * @param {string[]} values
   * @param {string} current
   */
  syncOptions(select, values, current) {
    // "All" (and "Problems only" for a status) stay first; the values present follow.
    const fixed = select.dataset.filter === 'status' ? 2 : 1;
    const chosen = current && current !== PROBLEMS && !values.includes(current);
    const wanted = chosen ? [...values, current] : values;
    const have = [...select.options].slice(fixed).map((o) => o.value);
    if (have.length === wanted.length && have.every((v, i) => v === wanted[i])) return;
    while (select.options.length > fixed) select.remove(fixed);
    for (const value of wanted) select.append(el('option', { value }, value));
    select.value = current;
  }

  /**
   * The values a column filter can choose from: those present in the view's rows, sorted.
   * @param {string} key
   * @returns {string[]}
   */
  choices(key) {
    return [...(this.index.choices[key] ?? [])].sort();
  }

  /**
   * React to a store change: mark the index dirty only when membership or order may change,
   * and remember what to flash.
   * @param {import('./store.js').Change} change
   */
  changed(change) {
    if (change.reset || !this.active) this.dirty = true;
    if (change.reset) this.flashes.clear();
    else {
      if (!this.dirty && !this.index.apply(change, this.store.rows, this.state, this.now())) {
        this.dirty = true;
      }
      this.indexChanged = true;
      for (const id of change.added) this.flashes.set(id, null);
      for (const [id, fields] of change.changed) {
        if (this.flashes.get(id) === null) continue;
        const known = this.flashes.get(id);
        this.flashes.set(id, known ? new Set([...known, ...fields]) : fields);
      }
      if (!this.active) this.flashes.clear();
    }
    this.schedule();
  }

  /**
   * Sort by a column; the same column again flips the direction.
   * @param {string} key
   */
  sortBy(key) {
    const column = columnByKey(this.def, key);
    if (!column) return;
    const firstDir = ['time', 'time-ms'].includes(column.kind ?? '') ? 'desc' : 'asc';
    this.state.dir = this.state.sort === key ? (this.state.dir === 'asc' ? 'desc' : 'asc') : firstDir;
    this.state.sort = key;
    this.grid.setSort(this.state.sort, this.state.dir);
    this.invalidate();
  }

  /**
   * Set the filter box text.
   * @param {string} text
   */
  setFilterText(text) {
    this.state.q = text;
    if (this.search.value !== text) this.search.value = text;
    // Typing keeps the rebuild spacing: at 100k rows a keystroke must not cost a full rebuild each.
    this.invalidate(false);
  }

  /**
   * Set a per-column filter ("" for all).
   * @param {string} key
   * @param {string} value
   */
  setColumnFilter(key, value) {
    this.state.filters[key] = value;
    const select = this.selects.get(key);
    if (select && select.value !== value) {
      this.syncOptions(select, this.choices(key), value);
      select.value = value; // syncOptions leaves the choice alone when the options are the same
    }
    const box = this.toggles.get(key);
    const toggle = this.def.toggles?.find((t) => t.key === key);
    if (box && toggle) box.checked = value === toggle.value;
    this.invalidate();
  }

  /**
   * The state changed: rebuild (now, or when the spacing allows) and write the URL.
   * @param {boolean} [now] rebuild on the next frame even if the last rebuild was slow
   */
  invalidate(now = true) {
    this.dirty = true;
    if (now) this.nextRebuildAt = 0;
    this.onStateChange();
    this.schedule();
  }

  /**
   * Show or hide this view.
   * @param {boolean} active
   */
  setActive(active) {
    this.active = active;
    this.section.hidden = !active;
    if (!active) this.flashes.clear();
    this.schedule();
  }

  /**
   * Per-frame work: rebuild the index if needed (and allowed), render the visible rows,
   * flash what changed.
   * @param {import('./columns.js').CellContext} ctx
   */
  frame(ctx) {
    if (!this.active) return;
    if (this.dirty) {
      const wait = this.nextRebuildAt - performance.now();
      if (wait <= 0) this.rebuild(ctx.now);
      else setTimeout(this.schedule, wait);
    }
    else if (this.indexChanged) this.showIndex();
    this.grid.render(ctx);
    this.pager?.render();
    if (this.flashes.size) {
      this.grid.flash(this.flashes);
      this.flashes.clear();
    }
  }

  /**
   * Rebuild the index from the store.
   * @param {number} now
   */
  rebuild(now) {
    const started = performance.now();
    this.index.rebuild(this.store.rows, this.state, now);
    this.dirty = false;
    this.showIndex();
    const cost = performance.now() - started;
    this.nextRebuildAt = cost > 16 ? performance.now() + cost * REBUILD_SPACING : 0;
  }

  /** Hand the current order to the grid and update the counts, options and empty state. */
  showIndex() {
    this.indexChanged = false;
    this.grid.setIndex(this.index.ids, (id) => this.index.row(this.store.rows, id));
    for (const [key, select] of this.selects) {
      this.syncOptions(select, this.choices(key), this.state.filters[key] ?? '');
    }
    const shown = this.index.ids.length;
    const filtered = this.state.q.trim() !== '' || Object.values(this.state.filters).some(Boolean);
    this.empty.hidden = shown > 0;
    if (!shown) {
      setText(this.empty, !this.store.ready ? 'Loading…' : filtered ? 'No row matches the filters.' : this.def.empty);
    }
    const previewOf = this.store.previewOf;
    if (previewOf !== null) setText(this.shown, `Loading ${formatCount(previewOf)} rows…`);
    else {
      setText(this.shown, filtered ? `${formatCount(shown)} of ${formatCount(this.store.rows.size)} rows`
        : `${formatCount(shown)} rows`);
    }
  }

  /**
   * What to ask the server for so that this view paints its first screen before the whole
   * table has arrived: null when it sorts by a column the server cannot order as the page
   * does (times, numbers, statuses: the server orders text only).
   * @returns {import('./socket.js').PreviewRequest|null}
   */
  previewRequest() {
    const column = columnByKey(this.def, this.state.sort) ?? columnByKey(this.def, this.def.sort.key);
    if (!column || column.kind) return null;
    // A screen's worth at the shortest row height, and a tall wall's too.
    const count = Math.min(PREVIEW_MAX, Math.max(PREVIEW_MIN, Math.ceil(innerHeight / 16)));
    return { table: this.def.table, sort: column.from ?? column.key, dir: this.state.dir, count };
  }

  /**
   * Once a second: rows whose expiry passed leave the index (countdowns re-render anyway).
   * @param {number} now
   */
  tick(now) {
    // "Expiring soon" depends on the clock: rows join it without any diff.
    if (Object.values(this.state.filters).includes(SOON)) this.dirty = true;
    if (!this.dirty && now >= this.index.nextChange && this.index.prune(this.store.rows, now)) {
      this.indexChanged = true;
    }
  }

  /**
   * Set the headline after the title ("2 registered users").
   * @param {string} text
   */
  setHeadline(text) {
    setText(this.headline, text ? ` - ${text}` : '');
  }

  /**
   * The rows currently shown, in order (for export).
   * @returns {Array<Record<string, any>>}
   */
  visibleRows() {
    return this.index.ids.map((id) => this.store.rows.get(id)).filter((row) => row !== undefined);
  }
}
