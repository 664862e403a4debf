// The keyboard's tooltip: while a grid has focus, the cursor row's cells that are cut ("503
// Service Un…") are shown whole just below the row. A mouse has each cell's title; screen
// readers read the cells' whole text anyway (only the picture is cut), so the tip is also the
// grid's description while shown.

import { el, setText } from './dom.js';

/**
 * @typedef {{label: string, cell: HTMLElement, shown: boolean}} TipCell
 */

/** One grid's tooltip. */
export class CellTip {
  /**
   * @param {HTMLElement} table the grid it describes
   * @param {string} id
   */
  constructor(table, id) {
    this.table = table;
    this.root = el('div', { class: 'cell-tip', role: 'tooltip', id, hidden: true });
    this.text = '';
  }

  /**
   * Show the whole text of the row's cut cells below it (or nothing if none is cut).
   * @param {HTMLElement} tr
   * @param {TipCell[]} cells
   */
  show(tr, cells) {
    const cut = cells.filter(({ cell, shown }) => shown && isCut(cell));
    const text = cut.map(({ label, cell }) => `${label}: ${cell.textContent ?? ''}`).join('\n');
    if (!text) {
      this.hide();
      return;
    }
    const host = this.root.offsetParent ?? this.table.closest('.view');
    const box = tr.getBoundingClientRect();
    const origin = host ? host.getBoundingClientRect() : { top: 0, left: 0 };
    // CSSOM: the CSP allows no style attribute.
    this.root.style.top = `${box.bottom - origin.top + 2}px`;
    this.root.style.left = `${Math.max(0, box.left - origin.left) + 8}px`;
    if (text !== this.text) {
      this.text = text;
      setText(this.root, text);
    }
    if (this.root.hidden) {
      this.root.hidden = false;
      this.table.setAttribute('aria-describedby', this.root.id);
    }
  }

  /** Hide the tip. */
  hide() {
    if (this.root.hidden) return;
    this.root.hidden = true;
    this.table.removeAttribute('aria-describedby');
  }
}

/**
 * Whether a cell's text is cut by its width (for a link, by its cell's).
 * @param {HTMLElement} cell
 * @returns {boolean}
 */
function isCut(cell) {
  const box = cell.closest('td') ?? cell;
  return box.scrollWidth > box.clientWidth + 1;
}
