// The browser's own settings (sound, notifications, theme, acknowledgements) in localStorage,
// tolerating storage that is unavailable (private mode, a sandboxed frame): then a setting
// lasts for this page only.

/**
 * The stored text under `key`, or null when none (or storage is unavailable).
 * @param {string} key
 * @returns {string|null}
 */
export function readStored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * Store `value` under `key`; without storage the value is simply not kept.
 * @param {string} key
 * @param {string} value
 */
export function writeStored(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage unavailable: the choice lasts for this page only.
  }
}
