// The server's clock as seen from the page: registrations expire on server time, and a wall
// display's own clock may be minutes off.

/** Server time estimated from hello.now plus the local clock's progress since. */
export class ServerClock {
  /** Assume the local clock until hello says otherwise. */
  constructor() {
    this.offset = 0;
  }

  /**
   * Align to the server's clock.
   * @param {unknown} serverNow unix seconds from hello.now
   */
  sync(serverNow) {
    if (typeof serverNow === 'number' && Number.isFinite(serverNow)) {
      this.offset = serverNow - Date.now() / 1000;
    }
  }

  /**
   * Current server time, unix seconds (float).
   * @returns {number}
   */
  now() {
    return Date.now() / 1000 + this.offset;
  }
}
