// Headline tiles: registered users, contacts, trunks OK/total, queue depth, oldest queued
// message. Alarm states are shown with words as well as colour.

import { el, setText } from './dom.js';
import { formatCount, formatDuration } from './format.js';

/**
 * @typedef {{root: HTMLElement, value: HTMLElement, note: HTMLElement}} Tile
 */

/** The row of tiles. */
export class Tiles {
  /**
   * @param {(view: string) => void} onSelect a tile click shows its view
   */
  constructor(onSelect) {
    this.users = this.tile('users', 'Registered users', 'accounts', onSelect);
    this.contacts = this.tile('contacts', 'Contacts', 'accounts', onSelect);
    this.trunks = this.tile('trunks', 'Trunks OK', 'trunks', onSelect);
    this.queue = this.tile('queue', 'Queue depth', 'queue', onSelect);
    this.oldest = this.tile('oldest', 'Oldest queued', 'queue', onSelect);
    this.root = el('section', { class: 'tiles', 'aria-label': 'Summary' },
      ...[this.users, this.contacts, this.trunks, this.queue, this.oldest].map((t) => t.root));
  }

  /**
   * Build one tile (a button that opens its view).
   * @param {string} name
   * @param {string} label
   * @param {string} view
   * @param {(view: string) => void} onSelect
   * @returns {Tile}
   */
  tile(name, label, view, onSelect) {
    const value = el('span', { class: 'tile-value', text: '–' });
    const note = el('span', { class: 'tile-note' });
    const root = el('button', {
      type: 'button', class: 'tile', 'data-tile': name, onclick: () => onSelect(view),
    }, el('span', { class: 'tile-label', text: label }), value, note);
    return { root, value, note };
  }

  /**
   * Set a tile's value, note and level ("ok", "warn", "alarm" or "").
   * @param {Tile} tile
   * @param {string} value
   * @param {string} note
   * @param {string} level
   */
  set(tile, value, note, level) {
    setText(tile.value, value);
    setText(tile.note, note);
    if (tile.root.dataset.level !== level) tile.root.dataset.level = level;
  }

  /**
   * Show the current numbers.
   * @param {import('./stats.js').Stats} stats
   * @param {number} now server unix seconds
   * @param {number} queueAlarm seconds after which the oldest queued message is an alarm
   * @param {Record<string, boolean>} ready whether each table has had its first snapshot
   */
  update(stats, now, queueAlarm, ready) {
    if (ready.accounts) {
      this.set(this.users, formatCount(stats.users), '', '');
      this.set(this.contacts, formatCount(stats.contacts), '', '');
    }
    if (ready.trunks) this.updateTrunks(stats, now);
    if (ready.queue) {
      this.set(this.queue, formatCount(stats.queueDepth), stats.queueDepth ? 'enqueued' : 'empty', '');
      if (stats.oldestReceived === null) this.set(this.oldest, '–', 'queue empty', 'ok');
      else {
        const age = Math.max(0, now - stats.oldestReceived);
        const late = age >= queueAlarm;
        this.set(this.oldest, formatDuration(age), late ? `OVER ${formatDuration(queueAlarm)}` : `limit ${formatDuration(queueAlarm)}`, late ? 'warn' : 'ok');
      }
    }
  }

  /**
   * Make the trunks and oldest-queued tiles pulse while an alarm of theirs waits for an
   * acknowledgement (steady once acknowledged: still red or amber, no longer calling).
   * @param {boolean} trunks
   * @param {boolean} queue
   */
  setUnacknowledged(trunks, queue) {
    this.trunks.root.toggleAttribute('data-unacked', trunks);
    this.oldest.root.toggleAttribute('data-unacked', queue);
  }

  /**
   * The trunks tile: red, naming every trunk that is not OK, the failed ones first and how
   * long each has been down.
   * @param {import('./stats.js').Stats} stats
   * @param {number} now server unix seconds
   */
  updateTrunks(stats, now) {
    const value = `${formatCount(stats.trunksOk)}/${formatCount(stats.trunksTotal)}`;
    const failed = stats.trunksFailed.map(({ name, since }) =>
      since === null ? name : `${name} (${formatDuration(Math.max(0, now - since))})`);
    const down = [];
    if (failed.length) down.push(`DOWN: ${failed.join(', ')}`);
    if (stats.trunksPending.length) down.push(`PENDING: ${stats.trunksPending.join(', ')}`);
    if (down.length) {
      // "Not OK" is an alarm, as the wall's operators asked; the words say which kind.
      this.set(this.trunks, value, down.join(' · '), 'alarm');
    } else {
      const note = stats.trunksDisabled ? `all OK, ${stats.trunksDisabled} disabled` : 'all OK';
      this.set(this.trunks, value, stats.trunksTotal ? note : 'none configured', 'ok');
    }
  }
}
