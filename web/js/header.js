// The top bar: brand, view tabs, DEMO badge, connection indicator, server clock, signed-in
// user with Admin and Sign out, sound, notification and theme toggles.

import { el, setText } from './dom.js';

const LINK_TEXT = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' };

/** The page header. */
export class Header {
  /**
   * @param {{views: import('./viewdefs.js').ViewDef[], onView: (name: string) => void,
   *   onTheme: () => void, onSound: () => boolean, soundOn: boolean,
   *   onNotify: () => Promise<boolean>, notifyOn: boolean, notifySupported: boolean}} options
   */
  constructor({ views, onView, onTheme, onSound, soundOn, onNotify, notifyOn, notifySupported }) {
    this.tabs = new Map(views.map((view) => [view.name, el('button', {
      type: 'button', class: 'tab', 'data-view': view.name, 'data-short': view.short,
      'aria-label': view.label, onclick: () => onView(view.name),
    }, view.label)]));
    this.demo = el('span', { class: 'badge badge-demo', hidden: true, title: 'The data shown is generated demo traffic' }, 'DEMO');
    this.link = el('span', { class: 'link', 'data-state': 'connecting', role: 'status' },
      el('span', { class: 'link-dot', 'aria-hidden': 'true' }), el('span', { class: 'link-text', text: LINK_TEXT.connecting }));
    this.clock = el('span', { class: 'clock', title: 'Server time' });
    this.user = el('span', { class: 'user', hidden: true });
    // A real form: the browser posts it (same origin, SameSite=Strict cookie) and follows the
    // server's redirect to /login; POST /logout takes no token (docs/security.md).
    this.admin = el('a', { class: 'btn admin-link', href: '/admin', hidden: true }, 'Admin');
    this.signOut = el('form', { class: 'sign-out', method: 'post', action: '/logout', hidden: true },
      el('button', { type: 'submit', class: 'btn' }, 'Sign out'));
    this.sound = el('button', { type: 'button', class: 'btn sound', 'aria-pressed': String(soundOn),
      title: 'Beep when a trunk goes down (this browser only)', onclick: () => this.setSound(onSound()) });
    this.setSound(soundOn);
    this.notify = el('button', { type: 'button', class: 'btn notify chrome', 'aria-pressed': String(notifyOn),
      hidden: !notifySupported, title: 'Notify of new alarms while this tab is in the background (this browser only)',
      onclick: async () => this.setNotify(await onNotify()) });
    this.setNotify(notifyOn);
    this.account = el('div', { class: 'account chrome', hidden: true }, this.user, this.admin, this.signOut);
    const theme = el('button', { type: 'button', class: 'btn chrome', onclick: onTheme, title: 'Switch light/dark theme' }, 'Theme');
    this.root = el('header', { class: 'topbar' },
      el('div', { class: 'brand' }, el('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'rtm'),
        el('span', { class: 'brand-name' }, 'Real-Time Management')),
      el('nav', { class: 'tabs chrome', 'aria-label': 'Views' }, ...this.tabs.values()),
      el('div', { class: 'topbar-status' }, this.demo, this.link, this.clock, this.sound, this.notify, theme,
        this.account));
  }

  /**
   * Mark the current view's tab.
   * @param {string} name
   */
  setView(name) {
    for (const [view, tab] of this.tabs) {
      if (view === name) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
  }

  /**
   * Show the connection state.
   * @param {import('./socket.js').LinkState} link
   */
  setLink(link) {
    this.link.dataset.state = link.state;
    setText(/** @type {Element} */ (this.link.querySelector('.link-text')), LINK_TEXT[link.state]);
  }

  /**
   * Show the demo flag and who is signed in; people (admin, operator) get Sign out, admins the
   * Admin link. A wall display has no session of its own to end (kiosk hides all of it anyway).
   * @param {boolean} demo the server runs demo traffic
   * @param {import('./session.js').User|null} user
   */
  setHello(demo, user) {
    this.demo.hidden = !demo;
    const role = user?.role ?? '';
    this.account.hidden = !user;
    this.user.hidden = !user;
    if (user) setText(this.user, `${user.name} · ${role}`);
    this.admin.hidden = role !== 'admin';
    this.signOut.hidden = role !== 'admin' && role !== 'operator';
  }

  /**
   * Show the sound toggle's state.
   * @param {boolean} on
   */
  setSound(on) {
    this.sound.setAttribute('aria-pressed', String(on));
    setText(this.sound, on ? 'Sound on' : 'Sound off');
  }

  /**
   * Show the notification toggle's state.
   * @param {boolean} on
   */
  setNotify(on) {
    this.notify.setAttribute('aria-pressed', String(on));
    setText(this.notify, on ? 'Notify on' : 'Notify off');
  }

  /**
   * Show the server clock.
   * @param {string} text
   */
  setClock(text) {
    setText(this.clock, text);
  }
}
