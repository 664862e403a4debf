// One animation frame for all DOM work: many messages per frame become one render.

/** Coalesces render requests into a single requestAnimationFrame callback. */
export class FrameScheduler {
  /**
   * @param {() => void} render called once per frame when requested
   */
  constructor(render) {
    this.render = render;
    this.pending = false;
  }

  /** Ask for a render on the next frame (idempotent within a frame). */
  request() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }
}
