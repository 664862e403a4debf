// Time and number formatting in the server's configured zone. The zone's rules come from the
// server (hello.tz.transitions) so the page shows the same offsets and abbreviations as the
// server's own clock, whatever zone the viewing browser is in.

// Parsed timestamps, in two generations: a lookup that finds one in the older moves it to
// the newer, and the newer becomes the older every ISO_GENERATION_MS (or at the limit), so
// what the tables no longer show leaves. A single map cleared only at its limit kept every
// expiry and arrival it ever saw (~11,000 an hour in the soak: +1 MiB of heap an hour).
const ISO_CACHE_LIMIT = 131072;
const ISO_GENERATION_MS = 10 * 60 * 1000;
/** @type {Map<string, number|null>} */
let parsedIso = new Map();
/** @type {Map<string, number|null>} */
let olderIso = new Map();
let isoGenerationStart = Date.now();

/**
 * Pad a number to two digits.
 * @param {number} n
 * @returns {string}
 */
function pad2(n) {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Unix seconds (float) from an ISO-8601 string, cached because sorting 100k rows re-reads them.
 * @param {unknown} iso
 * @returns {number|null} null for null/invalid
 */
export function parseTime(iso) {
  if (typeof iso === 'number') return Number.isFinite(iso) ? iso : null;
  if (typeof iso !== 'string' || iso === '') return null;
  let seconds = parsedIso.get(iso);
  if (seconds === undefined) {
    seconds = olderIso.get(iso);
    if (seconds === undefined) {
      const ms = Date.parse(iso);
      seconds = Number.isNaN(ms) ? null : ms / 1000;
    }
    const now = Date.now();
    if (parsedIso.size >= ISO_CACHE_LIMIT || now - isoGenerationStart > ISO_GENERATION_MS) {
      olderIso = parsedIso;
      parsedIso = new Map();
      isoGenerationStart = now;
    }
    parsedIso.set(iso, seconds);
  }
  return seconds;
}

/** A time zone described by the server as [start, utc offset, abbreviation] transitions. */
export class Zone {
  /**
   * @param {{name?: unknown, transitions?: unknown}|null|undefined} tz hello.tz
   */
  constructor(tz) {
    const raw = tz && Array.isArray(tz.transitions) ? tz.transitions : [];
    const valid = raw.filter(
      (t) => Array.isArray(t) && Number.isFinite(t[0]) && Number.isFinite(t[1]),
    );
    valid.sort((a, b) => a[0] - b[0]);
    this.name = tz && typeof tz.name === 'string' ? tz.name : 'UTC';
    /** @type {number[]} */
    this.starts = valid.map((t) => t[0]);
    /** @type {number[]} */
    this.offsets = valid.map((t) => t[1]);
    /** @type {string[]} */
    this.abbrs = valid.map((t) => (typeof t[2] === 'string' ? t[2] : ''));
  }

  /**
   * The offset (seconds) and abbreviation in force at a unix time.
   * @param {number} t
   * @returns {{offset: number, abbr: string}}
   */
  at(t) {
    if (this.starts.length === 0) return { offset: 0, abbr: this.name === 'UTC' ? 'UTC' : '' };
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    return { offset: this.offsets[lo], abbr: this.abbrs[lo] || offsetName(this.offsets[lo]) };
  }

  /**
   * "2013-10-10 17:21:22 CEST", or with milliseconds "2014-01-16 06:40:37.105 CET".
   * @param {number} t unix seconds
   * @param {boolean} [withMs]
   * @returns {string}
   */
  format(t, withMs = false) {
    const { offset, abbr } = this.at(t);
    const local = new Date(Math.floor((t + offset) * 1000));
    const date = `${local.getUTCFullYear()}-${pad2(local.getUTCMonth() + 1)}-${pad2(local.getUTCDate())}`;
    let time = `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())}`;
    if (withMs) time += `.${String(local.getUTCMilliseconds()).padStart(3, '0')}`;
    return `${date} ${time} ${abbr}`;
  }

  /**
   * Only the clock part, "17:21:22 CEST", for the header clock and banners.
   * @param {number} t
   * @returns {string}
   */
  formatClock(t) {
    return this.format(t).slice(11);
  }
}

/**
 * "+0530"-style name for an offset without an abbreviation.
 * @param {number} offset seconds
 * @returns {string}
 */
function offsetName(offset) {
  const sign = offset < 0 ? '-' : '+';
  const minutes = Math.abs(Math.round(offset / 60));
  return `${sign}${pad2(Math.floor(minutes / 60))}${pad2(minutes % 60)}`;
}

/**
 * A short human duration: "42s", "4m 05s", "2h 07m", "3d 4h".
 * @param {number} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const integerFormat = new Intl.NumberFormat('en-US');

/**
 * "100,000".
 * @param {number} n
 * @returns {string}
 */
export function formatCount(n) {
  return integerFormat.format(n);
}

/**
 * "1 user" / "2 users".
 * @param {number} n
 * @param {string} singular
 * @param {string} [plural]
 * @returns {string}
 */
export function plural(n, singular, plural = `${singular}s`) {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}
