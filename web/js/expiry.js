// When a registration leaves the page: at its expiry it starts fading, FADE_SECONDS later it is
// gone, whether or not the server has sent the delete yet (Kamailio purges on its own timer).

import { parseTime } from './format.js';

export const FADE_SECONDS = 1;

/**
 * A row's expiry as unix seconds, or null when it never expires.
 * @param {Record<string, any>} row
 * @returns {number|null}
 */
export function expiresAt(row) {
  return parseTime(row.expires);
}

/**
 * When a row has expired and finished fading (unix seconds), or null when it never expires.
 * @param {Record<string, any>} row
 * @returns {number|null}
 */
export function goneAt(row) {
  const t = expiresAt(row);
  return t === null ? null : t + FADE_SECONDS;
}

/**
 * Until when a row still counts and shows (unix seconds; Infinity when it never expires), or
 * null when it has expired and finished fading by `now`.
 * @param {Record<string, any>} row
 * @param {number} now server unix seconds
 * @returns {number|null}
 */
export function shownUntil(row, now) {
  const gone = goneAt(row);
  if (gone === null) return Number.POSITIVE_INFINITY;
  return gone <= now ? null : gone;
}

/**
 * Whether a row has expired and finished fading (it no longer counts or shows).
 * @param {Record<string, any>} row
 * @param {number} now server unix seconds
 * @returns {boolean}
 */
export function isGone(row, now) {
  const gone = goneAt(row);
  return gone !== null && gone <= now;
}

/**
 * Whether a row has expired and is fading out.
 * @param {Record<string, any>} row
 * @param {number} now
 * @returns {boolean}
 */
export function isExpiring(row, now) {
  const t = expiresAt(row);
  return t !== null && t <= now;
}
