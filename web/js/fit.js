// Which columns a grid shows in the width it has. A desk shows every column and scrolls
// sideways; a wall, a phone and a desk with the details drawer open fit instead: the most
// useful columns that fit, whole, in the order the view lists them (viewdefs.js `rank`).

// Column widths in rem, as web/css/rtm.css sets them (col.w-*); "rest" at its least.
export const WIDTH_REM = /** @type {Record<string, number>} */ ({
  port: 4.8, xs: 6.3, s: 7, phone: 10, ip: 9.5, m: 9.5, l: 13.2, ms: 15.5, xl: 20, rest: 10,
});

/**
 * A column's width in rem (a "rest" column at its least).
 * @param {import('./viewdefs.js').Column} column
 * @returns {number}
 */
export function columnRem(column) {
  return WIDTH_REM[column.width ?? 'm'] ?? WIDTH_REM.m;
}

/**
 * The columns to show in `room` rem: every column without a rank (they name the row or say
 * its state: Username, Status) and then, most useful first (rank 1, 2, ...), each that still
 * fits whole; a column that does not fit is skipped for a smaller, less useful one after it.
 * @param {import('./viewdefs.js').Column[]} columns
 * @param {number} room rem available
 * @returns {boolean[]} shown, per column
 */
export function fitColumns(columns, room) {
  const shown = columns.map((column) => column.rank === undefined);
  let used = columns.reduce((sum, column, i) => sum + (shown[i] ? columnRem(column) : 0), 0);
  const ranked = columns.map((column, i) => ({ column, i })).filter(({ column }) => column.rank !== undefined);
  ranked.sort((a, b) => (a.column.rank ?? 0) - (b.column.rank ?? 0));
  for (const { column, i } of ranked) {
    const width = columnRem(column);
    if (used + width > room) continue;
    shown[i] = true;
    used += width;
  }
  return shown;
}
