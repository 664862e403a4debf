// The list of alarms under the tiles (desk only: a wall has no one to click): one line each,
// worst first, "▲ carrier-b FAILED for 2m 10s · 408 Request Timeout [Acknowledge]". An
// acknowledged alarm stays listed, marked and steady, until it recovers.

import { el, setText } from './dom.js';
import { formatDuration } from './format.js';

const SHAPES = { FAILED: '▲', LATE: '■' };

/** The alarm list. */
export class AlarmList {
  /**
   * @param {(id: string) => void} onAcknowledge
   */
  constructor(onAcknowledge) {
    this.onAcknowledge = onAcknowledge;
    this.list = el('ul', { class: 'alarm-items' });
    this.root = el('section', { class: 'alarms chrome', 'aria-label': 'Alarms', hidden: true }, this.list);
    // The lines' structure (which alarms, acknowledged or not): rebuilt only when it changes,
    // so a button being focused is not replaced under the keyboard every second.
    this.shape = '';
    /** @type {Map<string, HTMLElement>} */
    this.texts = new Map();
  }

  /**
   * Show the alarms on, their durations ticking.
   * @param {import('./alarms.js').Alarm[]} alarms worst first
   * @param {number} now server unix seconds
   * @param {number} queueLimit seconds
   */
  render(alarms, now, queueLimit) {
    const shape = alarms.map((a) => `${a.id}:${a.acked}`).join('|');
    if (shape !== this.shape) {
      this.shape = shape;
      this.texts.clear();
      this.list.replaceChildren(...alarms.map((alarm) => this.item(alarm)));
      this.root.hidden = alarms.length === 0;
    }
    for (const alarm of alarms) {
      const text = this.texts.get(alarm.id);
      if (text) setText(text, words(alarm, now, queueLimit));
    }
  }

  /**
   * One alarm's line.
   * @param {import('./alarms.js').Alarm} alarm
   * @returns {HTMLElement}
   */
  item(alarm) {
    const text = el('span', { class: 'alarm-text' });
    this.texts.set(alarm.id, text);
    const action = alarm.acked
      ? el('span', { class: 'alarm-acked' }, '✓ acknowledged')
      : el('button', { type: 'button', class: 'btn alarm-ack', onclick: () => this.onAcknowledge(alarm.id),
        'aria-label': `Acknowledge ${alarm.kind === 'queue' ? 'the queue alarm' : alarm.name}` }, 'Acknowledge');
    return el('li', { class: 'alarm', 'data-alarm': alarm.id, 'data-acked': String(alarm.acked) },
      el('span', { class: 'alarm-shape', 'aria-hidden': 'true' }, SHAPES[/** @type {keyof typeof SHAPES} */ (alarm.status)] ?? '◆'),
      text, action);
  }
}

/**
 * An alarm's line in words.
 * @param {import('./alarms.js').Alarm} alarm
 * @param {number} now
 * @param {number} queueLimit
 * @returns {string}
 */
function words(alarm, now, queueLimit) {
  const age = alarm.since === null ? '' : formatDuration(Math.max(0, now - alarm.since));
  if (alarm.kind === 'queue') return `Oldest queued message waiting ${age} (limit ${formatDuration(queueLimit)})`;
  const since = age ? ` for ${age}` : '';
  return `${alarm.name} ${alarm.status}${since}${alarm.reason ? ` · ${alarm.reason}` : ''}`;
}
