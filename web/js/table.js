// A virtual-scrolling grid: a real <table role="grid"> whose body holds only the rows in view
// (plus a few either side) between two spacer rows sized to stand for the rest. Rows are a
// recycled pool; a cell is written only when its text changes.

import { cellText, statusClass } from './columns.js';
import { el, restartAnimation, setText, stopAnimation } from './dom.js';
import { CellTip } from './celltip.js';
import { isExpiring } from './expiry.js';
import { columnRem, fitColumns } from './fit.js';

const OVERSCAN = 6;
const DEFAULT_ROW_PX = 30;

/**
 * @typedef {{tr: HTMLTableRowElement, cells: HTMLTableCellElement[], targets: HTMLElement[],
 *   id: string|null, index: number}} Slot
 */

/**
 * A body cell's base classes.
 * @param {import('./viewdefs.js').Column} column
 * @returns {string}
 */
function cellClass(column) {
  return column.kind === 'number' || column.kind === 'latency' ? 'num' : '';
}

/** The grid of one view. */
export class VirtualTable {
  /**
   * @param {{view: import('./viewdefs.js').ViewDef, labelId: string,
   *   schedule: () => void, onSort: (key: string) => void,
   *   onOpen: (column: import('./viewdefs.js').Column, row: Record<string, any>) => void,
   *   linkFor: (column: import('./viewdefs.js').Column, row: Record<string, any>) => string}} options
   */
  constructor({ view, labelId, schedule, onSort, onOpen, linkFor }) {
    this.view = view;
    this.columns = view.columns;
    this.schedule = schedule;
    this.onOpen = onOpen;
    this.linkFor = linkFor;
    // Off for a login that may not open details (a wall display): the cells stay plain text.
    this.links = true;
    /** @type {string[]} */
    this.ids = [];
    /** @type {(id: string) => Record<string, any>|undefined} */
    this.rowOf = () => undefined;
    /** @type {import('./columns.js').CellContext|null} */
    this.ctx = null;
    this.cursor = -1;
    /** @type {string|null} */
    this.cursorId = null;
    this.rowPx = 0;
    /** @type {Slot[]} */
    this.pool = [];
    this.headers = this.columns.map((column) => this.header(column, onSort));
    this.head = el('thead', {}, el('tr', { 'aria-rowindex': '1' }, ...this.headers));
    this.spacerTop = this.spacer();
    this.spacerBottom = this.spacer();
    this.body = el('tbody', {}, this.spacerTop, this.spacerBottom);
    this.cols = this.columns.map((column) => el('col', { class: `w-${column.width ?? 'm'}` }));
    /** Characters a column shows before it cuts: longer texts carry a tooltip. */
    this.fits = this.columns.map((column) => Math.floor(columnRem(column) * 1.8) - 2);
    // Which columns show: all on a desk (it scrolls sideways), those that fit when `fit`.
    /** @type {boolean[]} */
    this.shown = this.columns.map(() => true);
    this.fit = false;
    this.lead = 0;
    // Extra room below the last row, so a wall's last page can start at the top (paging).
    this.tailPx = 0;
    this.table = el('table', {
      class: 'grid', role: 'grid', tabindex: '0', 'aria-labelledby': labelId,
      'aria-colcount': String(this.columns.length), 'aria-rowcount': '1',
    }, el('colgroup', {}, ...this.cols), this.head, this.body);
    this.scroller = el('div', { class: 'grid-scroll' }, this.table);
    this.tip = new CellTip(this.table, `${view.name}-tip`);
    this.showColumns(this.shown);
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.table.addEventListener('keydown', (event) => this.key(event));
    this.body.addEventListener('click', (event) => this.click(event));
    this.body.addEventListener('mouseover', (event) => this.hover(event));
    this.table.addEventListener('focus', () => this.schedule());
    this.table.addEventListener('blur', () => this.tip.hide());
    new ResizeObserver(() => {
      this.rowPx = 0;
      this.layoutColumns();
      this.schedule();
    }).observe(this.scroller);
  }

  /**
   * Fit the columns to the grid's width (or show them all), as `setFit` chose.
   */
  layoutColumns() {
    const width = this.scroller.clientWidth;
    if (width === 0) return; // hidden: laid out when shown
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const shown = this.fit ? fitColumns(this.columns, width / rem) : this.columns.map(() => true);
    if (shown.some((on, i) => on !== this.shown[i])) this.showColumns(shown);
  }

  /**
   * Whether the grid fits its columns to its width (a wall, a phone, beside the drawer) or
   * shows them all and scrolls sideways (a desk).
   * @param {boolean} on
   */
  setFit(on) {
    if (this.fit === on) return;
    this.fit = on;
    this.layoutColumns();
    this.schedule();
  }

  /**
   * Show these columns (hidden ones are display:none in every row, header and colgroup); the
   * first shown one names the row and stays in sight when the grid scrolls sideways.
   * @param {boolean[]} shown
   */
  showColumns(shown) {
    this.shown = shown;
    this.lead = Math.max(0, shown.indexOf(true));
    this.cols.forEach((col, i) => { col.hidden = !shown[i]; });
    this.headers.forEach((th, i) => this.markCell(th, i));
    for (const slot of this.pool) slot.cells.forEach((cell, i) => this.markCell(cell, i));
    const count = shown.filter(Boolean).length;
    for (const spacer of [this.spacerTop, this.spacerBottom]) spacer.cells[0].colSpan = count;
    this.table.setAttribute('aria-colcount', String(count));
    // A fixed layout gives "rest" columns what the fixed ones leave, which on a laptop is
    // nothing ("sbc.carrier-c…", "408 Request…"): the grid is at least as wide as every shown
    // column at its own width, and scrolls sideways past that (the first column stays).
    const minRem = this.columns.reduce((sum, column, i) => sum + (shown[i] ? columnRem(column) : 0), 0);
    this.table.style.minWidth = `${minRem}rem`; // CSSOM: the CSP allows no style attribute
  }

  /**
   * Hide or show one cell as its column is, and mark the lead column's.
   * @param {HTMLElement} cell
   * @param {number} i column index
   */
  markCell(cell, i) {
    cell.hidden = !this.shown[i];
    cell.toggleAttribute('data-lead', i === this.lead);
  }

  /**
   * A column header with a sort button.
   * @param {import('./viewdefs.js').Column} column
   * @param {(key: string) => void} onSort
   * @returns {HTMLElement}
   */
  header(column, onSort) {
    const button = el('button', { type: 'button', class: 'sort', title: column.hint ? `${column.hint} (sort by ${column.label})` : `Sort by ${column.label}`, onclick: () => onSort(column.key) },
      el('span', { class: 'sort-label' }, column.label), el('span', { class: 'sort-mark', 'aria-hidden': 'true' }));
    return el('th', { scope: 'col', role: 'columnheader', 'aria-sort': 'none', 'data-key': column.key, class: cellClass(column) || null }, button);
  }

  /**
   * A spacer row standing for rows not in the DOM.
   * @returns {HTMLTableRowElement}
   */
  spacer() {
    const row = /** @type {HTMLTableRowElement} */ (el('tr', { class: 'spacer', 'aria-hidden': 'true' },
      el('td', { colspan: String(this.columns.length) })));
    row.hidden = true;
    return row;
  }

  /**
   * Show the sort state in the headers.
   * @param {string} key
   * @param {'asc'|'desc'} dir
   */
  setSort(key, dir) {
    for (const th of this.headers) {
      const sorted = th.dataset.key === key;
      th.setAttribute('aria-sort', sorted ? (dir === 'asc' ? 'ascending' : 'descending') : 'none');
      setText(/** @type {Element} */ (th.querySelector('.sort-mark')), sorted ? (dir === 'asc' ? '▲' : '▼') : '');
    }
  }

  /**
   * Whether link cells (Username, Received) open details. Without links an <a> has no href:
   * not a link, not focusable, styled as text.
   * @param {boolean} on
   */
  setLinks(on) {
    if (this.links === on) return;
    this.links = on;
    for (const slot of this.pool) {
      this.columns.forEach((column, i) => {
        if (column.link) slot.targets[i].removeAttribute('href');
      });
      slot.id = null; // refilled (with its href, if on) on the next frame
    }
    this.schedule();
  }

  /**
   * Replace the ordered ids the grid shows; the keyboard cursor follows its row.
   * @param {string[]} ids
   * @param {(id: string) => Record<string, any>|undefined} rowOf
   */
  setIndex(ids, rowOf) {
    this.ids = ids;
    this.rowOf = rowOf;
    // Most diffs leave the cursor's row where it was: look there before searching 100k ids.
    if (this.cursorId !== null && ids[this.cursor] !== this.cursorId) {
      const at = ids.indexOf(this.cursorId);
      this.cursor = at >= 0 ? at : Math.min(this.cursor, ids.length - 1);
      this.cursorId = this.cursor >= 0 ? ids[this.cursor] : null;
    }
    this.table.setAttribute('aria-rowcount', String(ids.length + 1));
  }

  /**
   * Render the visible window. Reads layout first, then writes, to avoid layout thrash.
   * @param {import('./columns.js').CellContext} ctx
   */
  render(ctx) {
    this.ctx = ctx;
    if (this.scroller.clientHeight === 0) return; // hidden view
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const headPx = this.head.offsetHeight;
    const top = Math.max(0, this.scroller.scrollTop - headPx);
    const total = this.ids.length;
    const start = Math.min(total, Math.max(0, Math.floor(top / rowPx) - OVERSCAN));
    const end = Math.min(total, Math.ceil((top + this.scroller.clientHeight) / rowPx) + OVERSCAN);
    this.resizePool(end - start);
    this.setSpacer(this.spacerTop, start * rowPx);
    this.setSpacer(this.spacerBottom, (total - end) * rowPx + this.tailPx);
    let active = null;
    for (let i = start; i < end; i += 1) {
      const slot = this.pool[i - start];
      this.fill(slot, this.ids[i], i, ctx);
      if (i === this.cursor) active = slot.tr.id;
    }
    if (active) this.table.setAttribute('aria-activedescendant', active);
    else this.table.removeAttribute('aria-activedescendant');
    this.showTip(start);
    if (!this.rowPx && this.pool.length) {
      const measured = this.pool[0].tr.getBoundingClientRect().height;
      if (measured > 0 && Math.abs(measured - rowPx) > 0.5) {
        this.rowPx = measured;
        this.schedule();
      } else if (measured > 0) this.rowPx = measured;
    }
  }

  /**
   * Size a spacer row, hiding it when empty.
   * @param {HTMLTableRowElement} spacer
   * @param {number} px
   */
  setSpacer(spacer, px) {
    spacer.hidden = px <= 0;
    spacer.style.height = `${px}px`;
  }

  /**
   * Grow or shrink the pool of row elements to `count`.
   * @param {number} count
   */
  resizePool(count) {
    while (this.pool.length < count) {
      const cells = this.columns.map((column) => /** @type {HTMLTableCellElement} */ (el('td', { class: cellClass(column) })));
      const targets = this.columns.map((column, i) => {
        if (!column.link) return cells[i];
        const link = el('a', { class: 'cell-link', 'data-link': column.link });
        cells[i].append(link);
        return link;
      });
      cells.forEach((cell, i) => this.markCell(cell, i));
      const tr = /** @type {HTMLTableRowElement} */ (el('tr', {
        class: 'row', id: `${this.view.name}-slot-${this.pool.length}`, 'aria-selected': 'false',
      }, ...cells));
      this.body.insertBefore(tr, this.spacerBottom);
      this.pool.push({ tr, cells, targets, id: null, index: -1 });
    }
    while (this.pool.length > count) {
      const slot = /** @type {Slot} */ (this.pool.pop());
      slot.tr.remove();
    }
  }

  /**
   * Show one row in a slot, writing only what changed.
   * @param {Slot} slot
   * @param {string} id
   * @param {number} index position in the view
   * @param {import('./columns.js').CellContext} ctx
   */
  fill(slot, id, index, ctx) {
    const row = this.rowOf(id);
    if (!row) return;
    const fresh = slot.id !== id;
    if (fresh) {
      slot.id = id;
      stopAnimation(slot.tr, 'flash');
      for (const cell of slot.cells) stopAnimation(cell, 'flash');
    }
    if (slot.index !== index) {
      slot.index = index;
      slot.tr.setAttribute('aria-rowindex', String(index + 2));
    }
    const selected = index === this.cursor;
    if (slot.tr.classList.contains('active') !== selected) {
      slot.tr.classList.toggle('active', selected);
      slot.tr.setAttribute('aria-selected', String(selected));
    }
    slot.tr.classList.toggle('expiring', Boolean(this.view.expiring) && isExpiring(row, ctx.now));
    this.columns.forEach((column, i) => {
      const text = cellText(column, row, ctx);
      const target = slot.targets[i];
      if (setText(target, text) || fresh) {
        target.title = text.length > this.fits[i] ? text : '';
        if (column.link && this.links) /** @type {HTMLAnchorElement} */ (target).href = this.linkFor(column, row);
        if (column.kind === 'status') slot.cells[i].className = `${cellClass(column)} ${statusClass(row[column.key])}`;
      }
    });
  }

  /**
   * Flash rows that appeared and cells that changed, if they are on screen.
   * @param {Map<string, Set<string>|null>} flashes id -> changed fields (null: the whole row)
   */
  flash(flashes) {
    for (const slot of this.pool) {
      if (slot.id === null || !flashes.has(slot.id)) continue;
      const fields = flashes.get(slot.id);
      if (!fields) {
        restartAnimation(slot.tr, 'flash');
        continue;
      }
      this.columns.forEach((column, i) => {
        if (fields.has(column.from ?? column.key)) restartAnimation(slot.cells[i], 'flash');
      });
    }
  }

  /**
   * Keyboard navigation: arrows, Page Up/Down, Home/End move the cursor; Enter opens details.
   * @param {KeyboardEvent} event
   */
  key(event) {
    const total = this.ids.length;
    if (!total) return;
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / rowPx) - 2);
    const at = Math.max(this.cursor, 0);
    const moves = {
      ArrowDown: at + (this.cursor < 0 ? 0 : 1), ArrowUp: at - 1, PageDown: at + page,
      PageUp: at - page, Home: 0, End: total - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      this.moveTo(moves[/** @type {keyof typeof moves} */ (event.key)]);
    } else if (event.key === 'Enter' && this.cursor >= 0 && this.links) {
      event.preventDefault();
      const row = this.rowOf(this.ids[this.cursor]);
      const column = this.columns.find((c) => c.link);
      if (row && column) this.onOpen(column, row);
    }
  }

  /**
   * Move the keyboard cursor and scroll it into view.
   * @param {number} index
   */
  moveTo(index) {
    this.cursor = Math.max(0, Math.min(this.ids.length - 1, index));
    this.cursorId = this.ids[this.cursor] ?? null;
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const headPx = this.head.offsetHeight;
    const rowTop = headPx + this.cursor * rowPx;
    const viewTop = this.scroller.scrollTop + headPx;
    const viewBottom = this.scroller.scrollTop + this.scroller.clientHeight;
    if (rowTop < viewTop) this.scroller.scrollTop = rowTop - headPx;
    else if (rowTop + rowPx > viewBottom) this.scroller.scrollTop = rowTop + rowPx - this.scroller.clientHeight;
    this.schedule();
  }

  /**
   * A click selects the row; a click on a link cell opens its details in the page.
   * @param {MouseEvent} event
   */
  click(event) {
    const target = /** @type {Element} */ (event.target);
    const tr = target.closest('tr.row');
    const slot = this.pool.find((s) => s.tr === tr);
    if (!slot || slot.id === null) return;
    this.cursor = slot.index;
    this.cursorId = slot.id;
    this.schedule();
    const link = target.closest('a.cell-link');
    if (!link || !this.links || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    const row = this.rowOf(slot.id);
    const column = this.columns.find((c) => c.link === link.getAttribute('data-link'));
    if (row && column) this.onOpen(column, row);
  }

  /** Put keyboard focus on the grid. */
  focus() {
    this.table.focus();
  }

  /**
   * While the grid has keyboard focus, the cursor row's cut cells show whole in a tooltip
   * (hover has the cell's title; a keyboard has no hover).
   * @param {number} start index of the first pooled row
   */
  showTip(start) {
    const slot = this.pool[this.cursor - start];
    if (document.activeElement !== this.table || !slot) {
      this.tip.hide();
      return;
    }
    this.tip.show(slot.tr, this.columns.map((column, i) => ({ label: column.label, cell: slot.targets[i], shown: this.shown[i] })));
  }

  /**
   * Hovering a cut cell gives it its whole text as a tooltip, measured (the title fill() sets
   * is a guess by length).
   * @param {MouseEvent} event
   */
  hover(event) {
    const cell = /** @type {Element} */ (event.target).closest('td');
    if (!(cell instanceof HTMLTableCellElement) || cell.title) return;
    if (cell.scrollWidth > cell.clientWidth) cell.title = cell.textContent ?? '';
  }

  /**
   * How many whole rows fit under the header.
   * @returns {number}
   */
  pageSize() {
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    return Math.max(1, Math.floor((this.scroller.clientHeight - this.head.offsetHeight) / rowPx));
  }

  /**
   * Scroll so that row `index` is the first under the header (a wall's page).
   * @param {number} index
   */
  showRow(index) {
    this.tailPx = this.scroller.clientHeight;
    this.scroller.scrollTop = index * (this.rowPx || DEFAULT_ROW_PX);
    this.schedule();
  }
}
