// Light (desk) or dark theme, remembered per browser; kiosk displays are always dark.

const STORAGE_KEY = 'rtm.theme';

/**
 * The theme to start with: kiosk → dark, else the stored choice, else the system preference.
 * @param {boolean} kiosk
 * @returns {'light'|'dark'}
 */
export function initialTheme(kiosk) {
  if (kiosk) return 'dark';
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null;
  }
  if (stored === 'light' || stored === 'dark') return stored;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/**
 * Apply a theme to the document.
 * @param {'light'|'dark'} theme
 */
export function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}

/**
 * Switch theme and remember the choice.
 * @returns {'light'|'dark'} the new theme
 */
export function toggleTheme() {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  applyTheme(next);
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Storage unavailable: the choice lasts for this page only.
  }
  return next;
}
