// Light (desk) or dark theme, remembered per browser; kiosk displays are always dark.

import { readStored, writeStored } from './storage.js';

const STORAGE_KEY = 'rtm.theme';

/**
 * The theme to start with: kiosk → dark, else the stored choice, else the system preference.
 * @param {boolean} kiosk
 * @returns {'light'|'dark'}
 */
export function initialTheme(kiosk) {
  if (kiosk) return 'dark';
  const stored = readStored(STORAGE_KEY);
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
  writeStored(STORAGE_KEY, next);
  return next;
}
