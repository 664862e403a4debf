// The page's alarms: each trunk that is neither OK nor DISABLED, and the oldest queued message
// over `queue_alarm`. A new alarm sounds (if the sound is on) and notifies (if opted in and the
// tab is in the background); an alarm nobody acknowledged sounds again every `alarm_repeat`
// seconds and makes its tile pulse. Acknowledging silences it, until it recovers (the next
// failure alarms again). Acknowledgements are kept per browser (localStorage `rtm.acks`), each
// for the failure it was given for: a trunk's `since`, the queue's oldest `received`; while the
// page is open, a change from one bad state to another (FAILED to PENDING) keeps it.

import { parseTime } from './format.js';
import { readStored, writeStored } from './storage.js';

const STORAGE_KEY = 'rtm.acks';
export const QUEUE_ALARM = 'queue';

/**
 * @typedef {{id: string, kind: 'trunk'|'queue', name: string, status: string, reason: string,
 *   since: number|null, acked: boolean}} Alarm  since: when the trunk got this status, or when
 *   the oldest queued message arrived
 * @typedef {{beep: (kind: 'trunk'|'queue') => void}} Beeper
 * @typedef {{show: (title: string, body: string, tag: string) => void}} Notifier
 */

/** Alarms: which are on, which are acknowledged, and what sounds when. */
export class Alarms {
  /**
   * @param {{trunks: import('./store.js').TableStore, sound: Beeper, notifier: Notifier,
   *   repeat: number, onChange: () => void}} options repeat: seconds between reminders, 0 never
   */
  constructor({ trunks, sound, notifier, repeat, onChange }) {
    this.sound = sound;
    this.notifier = notifier;
    this.repeat = repeat;
    this.onChange = onChange;
    /** @type {Map<string, Alarm>} */
    this.active = new Map();
    /** @type {Record<string, number|null>} alarm id -> the `since` it was acknowledged for */
    this.acks = readAcks();
    this.trunksSeen = false;
    this.queueSeen = false;
    this.lastSound = 0;
    // Not before the first full snapshot: an empty table then is not "every trunk recovered".
    trunks.subscribe(() => {
      if (trunks.ready) this.trunksChanged(trunks.rows);
    });
  }

  /**
   * Follow the trunks' statuses: alarms start, change and end.
   * @param {Map<string, Record<string, any>>} rows
   */
  trunksChanged(rows) {
    const ids = new Set();
    for (const [key, row] of rows) {
      const status = String(row.status ?? '').toUpperCase();
      if (status === 'OK' || status === 'DISABLED' || status === '') continue;
      const id = `trunk:${key}`;
      ids.add(id);
      this.raise({ id, kind: 'trunk', name: String(row.name ?? key), status,
        reason: String(row.reason ?? ''), since: parseTime(row.since), acked: false }, this.trunksSeen);
    }
    // Recovered (or gone) while this page watched. Not a stored acknowledgement of a trunk
    // the first snapshot shows OK: that snapshot may be older than the diffs that follow it
    // (socket.js resumes from it); raise() drops acknowledgements of an earlier failure.
    for (const id of [...this.active.keys()]) if (id.startsWith('trunk:') && !ids.has(id)) this.clear(id);
    this.trunksSeen = true;
    this.onChange();
  }

  /**
   * Follow the queue's oldest message (each second and on changes).
   * @param {number|null} oldestReceived
   * @param {boolean} late older than the queue alarm's limit
   */
  queueChanged(oldestReceived, late) {
    if (late) {
      this.raise({ id: QUEUE_ALARM, kind: 'queue', name: 'Queue', status: 'LATE', reason: '',
        since: oldestReceived, acked: false }, this.queueSeen);
    } else if (this.active.has(QUEUE_ALARM)) this.clear(QUEUE_ALARM);
    this.queueSeen = true;
  }

  /**
   * An alarm is on: new ones sound and notify (not those already on when the page loaded: the
   * tile shows them), known ones keep their acknowledgement.
   * @param {Alarm} alarm
   * @param {boolean} loaded whether this source had been seen before (else: page load)
   */
  raise(alarm, loaded) {
    const known = this.active.get(alarm.id);
    if (known) {
      if (known.acked && known.since !== alarm.since) this.storeAck(alarm.id, alarm.since);
      alarm.acked = known.acked;
    } else if (alarm.id in this.acks) {
      // Stored by an earlier visit: for this failure, or for one that has since recovered.
      alarm.acked = this.acks[alarm.id] === alarm.since;
      if (!alarm.acked) this.clear(alarm.id);
    }
    this.active.set(alarm.id, alarm);
    if (known || !loaded || alarm.acked) return;
    this.sound.beep(alarm.kind);
    this.lastSound = Date.now();
    this.notifier.show(`rtm: ${describe(alarm)}`, alarm.reason, alarm.id);
  }

  /**
   * An alarm recovered: it and its acknowledgement go.
   * @param {string} id
   */
  clear(id) {
    this.active.delete(id);
    if (id in this.acks) {
      delete this.acks[id];
      writeAcks(this.acks);
    }
  }

  /**
   * Acknowledge an alarm: silent and steady until it recovers.
   * @param {string} id
   */
  acknowledge(id) {
    const alarm = this.active.get(id);
    if (!alarm) return;
    alarm.acked = true;
    this.storeAck(id, alarm.since);
    this.onChange();
  }

  /**
   * Remember an acknowledgement in this browser.
   * @param {string} id
   * @param {number|null} since
   */
  storeAck(id, since) {
    this.acks[id] = since;
    writeAcks(this.acks);
  }

  /**
   * The alarms on, worst first (failed trunks, then other trunks, then the queue).
   * @returns {Alarm[]}
   */
  list() {
    const rank = (/** @type {Alarm} */ a) => (a.kind === 'queue' ? 2 : a.status === 'FAILED' ? 0 : 1);
    return [...this.active.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  }

  /**
   * Whether any alarm of a kind waits for an acknowledgement.
   * @param {'trunk'|'queue'} kind
   * @returns {boolean}
   */
  unacknowledged(kind) {
    for (const alarm of this.active.values()) if (alarm.kind === kind && !alarm.acked) return true;
    return false;
  }

  /** Once a second: remind of unacknowledged alarms every `repeat` seconds. */
  tick() {
    if (!this.repeat || Date.now() - this.lastSound < this.repeat * 1000) return;
    const waiting = this.list().find((alarm) => !alarm.acked);
    if (!waiting) return;
    this.sound.beep(waiting.kind);
    this.lastSound = Date.now();
  }
}

/**
 * An alarm in words ("carrier-b FAILED", "oldest queued message over its limit").
 * @param {Alarm} alarm
 * @returns {string}
 */
export function describe(alarm) {
  return alarm.kind === 'queue' ? 'oldest queued message over its limit' : `${alarm.name} ${alarm.status}`;
}

/**
 * The stored acknowledgements, tolerating storage being unavailable or garbled.
 * @returns {Record<string, number|null>}
 */
function readAcks() {
  try {
    const value = JSON.parse(readStored(STORAGE_KEY) ?? '{}');
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {}; // garbled
  }
}

/**
 * Store the acknowledgements.
 * @param {Record<string, number|null>} acks
 */
function writeAcks(acks) {
  writeStored(STORAGE_KEY, JSON.stringify(acks));
}
