// The opt-in trunk-down beep (Web Audio), remembered per browser. Browsers only let audio start
// after a user gesture, so the context is created or resumed on the toggle click (and on any
// later click or key press when it was switched on in an earlier visit).

const STORAGE_KEY = 'rtm.sound';

/** A two-tone alarm that only sounds when the user switched it on. */
export class Sound {
  /** Read the stored choice and arm the gesture listeners that unlock audio. */
  constructor() {
    this.enabled = readSetting() === 'on';
    /** @type {AudioContext|null} */
    this.context = null;
    const unlock = () => {
      if (this.enabled) this.audio();
    };
    addEventListener('pointerdown', unlock);
    addEventListener('keydown', unlock);
  }

  /**
   * Switch the sound on or off and remember it.
   * @returns {boolean} the new state
   */
  toggle() {
    this.enabled = !this.enabled;
    writeSetting(this.enabled ? 'on' : 'off');
    if (this.enabled) this.beep();
    return this.enabled;
  }

  /**
   * The audio context, created or resumed (needs a user gesture the first time).
   * @returns {AudioContext|null}
   */
  audio() {
    try {
      this.context ??= new AudioContext();
      if (this.context.state === 'suspended') void this.context.resume();
    } catch {
      this.context = null;
    }
    return this.context;
  }

  /** Sound the alarm once, if enabled. */
  beep() {
    if (!this.enabled) return;
    const context = this.audio();
    if (!context) return;
    const start = context.currentTime + 0.02;
    [880, 660, 880].forEach((frequency, i) => {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = 'square';
      oscillator.frequency.value = frequency;
      const at = start + i * 0.22;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.21);
    });
  }
}

/**
 * The stored setting ("on"/"off"), tolerating storage being unavailable.
 * @returns {string|null}
 */
function readSetting() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/**
 * Store the setting.
 * @param {string} value
 */
function writeSetting(value) {
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

/**
 * Watches trunk statuses and beeps when one leaves OK (not on the first load: the tile shows it).
 */
export class TrunkAlarm {
  /**
   * @param {import('./store.js').TableStore} store
   * @param {Sound} sound
   */
  constructor(store, sound) {
    this.sound = sound;
    /** @type {Map<string, string>|null} */
    this.known = null;
    store.subscribe(() => this.check(store.rows));
  }

  /**
   * Compare statuses with the last ones seen.
   * @param {Map<string, Record<string, any>>} rows
   */
  check(rows) {
    /** @type {Map<string, string>} */
    const now = new Map();
    let wentDown = false;
    for (const [id, row] of rows) {
      const status = String(row.status ?? '');
      now.set(id, status);
      const before = this.known?.get(id);
      if (this.known && status !== 'OK' && status !== 'DISABLED' && (before === 'OK' || before === undefined)) {
        wentDown = true;
      }
    }
    this.known = now;
    if (wentDown) this.sound.beep();
  }
}
