// Opt-in browser notifications (the Notification API) for new alarms while the tab is in the
// background; in front, the page itself shows them. Remembered per browser (`rtm.notify`);
// the browser's own permission is asked on the first switch-on (a click: browsers require a
// gesture). Browsers without the API (or pages not served from a secure origin) do without.

import { readStored, writeStored } from './storage.js';
const STORAGE_KEY = 'rtm.notify';

/** The notifications switch. */
export class Notifications {
  /** Read the stored choice (on only while the browser still grants permission). */
  constructor() {
    this.supported = typeof Notification === 'function';
    this.wanted = readStored(STORAGE_KEY) === 'on';
  }

  /**
   * Whether notifications are on (wanted here and permitted by the browser).
   * @returns {boolean}
   */
  get enabled() {
    return this.supported && this.wanted && Notification.permission === 'granted';
  }

  /**
   * Switch on (asking the browser's permission if need be) or off, and remember it.
   * @returns {Promise<boolean>} whether they are on now
   */
  async toggle() {
    if (!this.supported) return false;
    if (this.enabled) {
      this.wanted = false;
    } else {
      const permission = Notification.permission === 'default'
        ? await Notification.requestPermission() : Notification.permission;
      this.wanted = permission === 'granted';
    }
    writeStored(STORAGE_KEY, this.wanted ? 'on' : 'off');
    return this.enabled;
  }

  /**
   * Notify, if on and the tab is not in front. `tag` replaces an earlier notification of the
   * same alarm rather than stacking them.
   * @param {string} title
   * @param {string} body
   * @param {string} tag
   */
  show(title, body, tag) {
    if (!this.enabled || document.visibilityState !== 'hidden') return;
    try {
      const note = new Notification(title, { body, tag });
      note.onclick = () => {
        window.focus();
        note.close();
      };
    } catch {
      // Some browsers only notify from a service worker: the sound and the tiles remain.
    }
  }
}
