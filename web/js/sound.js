// The opt-in alarm beep (Web Audio), remembered per browser; alarms.js says when. Browsers only
// let audio start after a user gesture, so the context is created or resumed on the toggle
// click (and on any later click or key press when it was switched on in an earlier visit).

import { readStored, writeStored } from './storage.js';
const STORAGE_KEY = 'rtm.sound';
// Hz, one tone each 0.22 s: a trunk down, and the queue's oldest message over its limit.
const TRUNK_TONES = [880, 660, 880];
const QUEUE_TONES = [440, 440];

/** A two-tone alarm that only sounds when the user switched it on. */
export class Sound {
  /** Read the stored choice and arm the gesture listeners that unlock audio. */
  constructor() {
    this.enabled = readStored(STORAGE_KEY) === 'on';
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
    writeStored(STORAGE_KEY, this.enabled ? 'on' : 'off');
    if (this.enabled) this.beep();
    return this.enabled;
  }

  /**
   * The audio context, created or resumed (needs a user gesture the first time).
   * @returns {AudioContext|null}
   */
  audio() {
    // Before any gesture the browser refuses (and says so in the console): stay quiet.
    if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return null;
    try {
      this.context ??= new AudioContext();
      if (this.context.state === 'suspended') void this.context.resume();
    } catch {
      this.context = null;
    }
    return this.context;
  }

  /**
   * Sound the alarm once, if enabled: a trunk's three tones, or the queue's two low ones.
   * @param {'trunk'|'queue'} [kind]
   */
  beep(kind = 'trunk') {
    if (!this.enabled) return;
    const context = this.audio();
    if (!context) return;
    const start = context.currentTime + 0.02;
    (kind === 'queue' ? QUEUE_TONES : TRUNK_TONES).forEach((frequency, i) => {
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
