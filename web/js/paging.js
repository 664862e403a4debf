// A wall cannot scroll: a table longer than its screen is shown a page at a time, the next
// page every `page` seconds (after the last, the first again), with "rows 16–30 of 209" by the
// title. A page is a position in the view's order, so rows changing live keep their places.

import { el, setText } from './dom.js';
import { formatCount } from './format.js';

/** Pages through one view's grid. */
export class Pager {
  /**
   * @param {import('./table.js').VirtualTable} grid
   */
  constructor(grid) {
    this.grid = grid;
    this.first = 0;
    this.label = el('span', { class: 'page-info', 'aria-live': 'off' });
  }

  /** Show the next page (or the first after the last, or when rows left the current one). */
  next() {
    const total = this.grid.ids.length;
    const size = this.grid.pageSize();
    this.first = this.first + size >= total ? 0 : this.first + size;
    this.grid.showRow(this.first);
    this.render();
  }

  /** Say which rows are on screen; back to the first page if the rows shown have all left. */
  render() {
    const total = this.grid.ids.length;
    if (this.first > 0 && this.first >= total) {
      this.first = 0;
      this.grid.showRow(0);
    }
    const size = this.grid.pageSize();
    const text = total <= size && this.first === 0 ? `${formatCount(total)} rows`
      : `rows ${formatCount(this.first + 1)}–${formatCount(Math.min(total, this.first + size))} of ${formatCount(total)}`;
    setText(this.label, text);
  }
}
