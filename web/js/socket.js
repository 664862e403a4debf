// The live connection: hello, resume, snapshots and diffs into the stores, and reconnection
// with capped full-jitter exponential backoff. A gap in a table's seq means rows were missed,
// so the socket is dropped and resumed from the last applied seq.
//
// A page holding nothing the server can resume from (first load, or the server restarted)
// fetches each table over HTTP before it answers hello: GET /api/<table> is one gzipped
// encode shared by every client (docs/protocol.md), where snapshot frames over the socket
// would be compressed again for each one. The resume then brings only the diffs since.
// Beside it the page asks for the active view's first screen (GET /api/<table>?first=N,
// sorted as the view sorts), so a 100k table shows its first rows before the rest arrives.

import { goToLogin, isLoggedOut } from './session.js';

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 8000;
// A second seq gap this soon after the last one waits like a reconnection (no resync storm).
const GAP_GRACE_MS = 5000;
// Close codes the server uses for "not logged in" (1008 is also used for abuse, so confirm).
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_POLICY = 1008;

/**
 * Full-jitter backoff: uniformly random in [0, min(cap, base * 2^attempt)].
 * @param {number} attempt 0 for the first retry
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.max(100, Math.random() * ceiling);
}

/**
 * @typedef {{state: 'connecting'|'live'|'reconnecting', retryAt: number|null, attempt: number}} LinkState
 * @typedef {{table: string, sort: string, dir: 'asc'|'desc', count: number}} PreviewRequest
 */

/** One WebSocket at a time to /ws, feeding the stores. */
export class Connection {
  /**
   * @param {{stores: Map<string, import('./store.js').TableStore>,
   *   onHello: (hello: any) => void, onSource: (msg: any) => void,
   *   onState: (state: LinkState) => void, onEvent: () => void,
   *   preview?: () => PreviewRequest|null}} options
   */
  constructor({ stores, onHello, onSource, onState, onEvent, preview }) {
    this.stores = stores;
    this.onHello = onHello;
    this.onSource = onSource;
    this.onState = onState;
    this.onEvent = onEvent;
    this.preview = preview ?? (() => null);
    // The snapshot fetch in progress: a preview lands only while its own fetch is.
    /** @type {object|null} */
    this.fetching = null;
    /** @type {string|null} */
    this.epoch = null;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.attempt = 0;
    this.greeted = false;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.retryTimer = null;
    this.lastGapAt = 0;
    this.url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  }

  /** Open the first connection and reconnect early when the network comes back. */
  start() {
    addEventListener('online', () => this.retryNow());
    this.open();
  }

  /** Open a WebSocket, dropping any previous one. */
  open() {
    this.retryTimer = null;
    for (const store of this.stores.values()) store.abortSnapshot();
    this.greeted = false;
    this.onState({ state: this.attempt ? 'reconnecting' : 'connecting', retryAt: null, attempt: this.attempt });
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('message', (event) => this.receive(ws, event.data));
    ws.addEventListener('close', (event) => this.closed(ws, event));
  }

  /**
   * Handle one frame from the server.
   * @param {WebSocket} ws
   * @param {unknown} data
   */
  receive(ws, data) {
    if (ws !== this.ws || typeof data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    this.onEvent();
    if (msg.type === 'hello') void this.hello(ws, msg);
    else if (msg.type === 'snapshot') this.stores.get(msg.table)?.applySnapshot(msg);
    else if (msg.type === 'diff') this.diff(msg);
    else if (msg.type === 'source') this.onSource(msg);
    else if (msg.type === 'error') console.warn('rtm server error:', msg.error);
  }

  /**
   * Answer hello with what we hold, so the server sends only what we missed; holding nothing
   * of this epoch, fetch the shared snapshots first.
   * @param {WebSocket} ws
   * @param {any} hello
   */
  async hello(ws, hello) {
    const epoch = typeof hello.epoch === 'string' ? hello.epoch : String(hello.epoch);
    this.greeted = true;
    this.attempt = 0;
    this.onHello(hello);
    this.onState({ state: 'live', retryAt: null, attempt: 0 });
    if (this.epoch !== epoch) this.epoch = await this.fetchSnapshots(epoch);
    if (ws !== this.ws) return; // dropped while fetching: the next socket resumes
    /** @type {Record<string, number>} */
    const seq = {};
    if (this.epoch !== null) {
      for (const [name, store] of this.stores) if (store.seq !== null) seq[name] = store.seq;
    }
    ws.send(JSON.stringify({ type: 'resume', epoch: this.epoch, seq }));
    this.epoch = epoch;
  }

  /**
   * Every table from GET /api/<table>, applied as snapshots when all are of `epoch`.
   * @param {string} epoch the server's, from hello
   * @returns {Promise<string|null>} the epoch the stores now hold, null when the fetch failed
   *   (the socket then sends snapshots, as to any client resuming with nothing)
   */
  async fetchSnapshots(epoch) {
    const fetching = {};
    this.fetching = fetching;
    void this.fetchPreview(epoch, fetching);
    try {
      const names = [...this.stores.keys()];
      const answers = await Promise.all(
        names.map(async (name) => {
          const answer = await fetch(`/api/${name}`, { credentials: 'same-origin' });
          return answer.ok ? answer.json() : null;
        }),
      );
      const usable = answers.every(
        (body) => body && body.epoch === epoch && Number.isInteger(body.seq) && Array.isArray(body.rows),
      );
      if (!usable) return null;
      names.forEach((name, i) => {
        const store = this.stores.get(name);
        // Health first: a table never read must not show its empty rows as a zero.
        const source = answers[i].source;
        if (source && typeof source === 'object') this.onSource({ ...source, type: 'source', table: name });
        store?.abortSnapshot();
        store?.applySnapshot({ seq: answers[i].seq, rows: answers[i].rows, final: true });
      });
      return epoch;
    } catch {
      return null;
    } finally {
      if (this.fetching === fetching) this.fetching = null;
    }
  }

  /**
   * The active view's first screen, shown while its whole table is still on the way (a
   * store that holds rows already keeps them until the snapshot replaces them).
   * @param {string} epoch
   * @param {object} fetching the fetch it belongs to
   */
  async fetchPreview(epoch, fetching) {
    const wanted = this.preview();
    const store = wanted && this.stores.get(wanted.table);
    if (!wanted || !store || store.ready) return;
    const query = new URLSearchParams({ first: String(wanted.count), sort: wanted.sort, dir: wanted.dir });
    try {
      const answer = await fetch(`/api/${wanted.table}?${query}`, { credentials: 'same-origin', cache: 'no-store' });
      const body = answer.ok ? await answer.json() : null;
      if (this.fetching !== fetching || !body || body.epoch !== epoch || !Number.isInteger(body.total)) return;
      store.applyPreview(body.rows, body.total);
    } catch {
      // Only a preview: the whole table is still coming.
    }
  }

  /**
   * Apply a diff; a gap in seq means we missed rows, so resume.
   * @param {any} msg
   */
  diff(msg) {
    const store = this.stores.get(msg.table);
    if (!store) return;
    if (store.applyDiff(msg) === 'gap') this.drop();
  }

  /** Close the current socket and resume: at once, or after a backoff when gaps repeat. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'resync');
    const now = Date.now();
    const repeated = now - this.lastGapAt < GAP_GRACE_MS;
    this.lastGapAt = now;
    if (!repeated) return this.open();
    this.retryLater(now);
  }

  /**
   * The socket closed: go to login when logged out, else retry with backoff.
   * @param {WebSocket} ws
   * @param {CloseEvent} event
   */
  async closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (event.code === CLOSE_UNAUTHORIZED) return goToLogin();
    if ((event.code === CLOSE_POLICY || !this.greeted) && (await isLoggedOut())) return goToLogin();
    this.retryLater(Date.now());
  }

  /**
   * Reopen after the next backoff delay, telling the page when the try will be.
   * @param {number} now Date.now() milliseconds
   */
  retryLater(now) {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onState({ state: 'reconnecting', retryAt: now + delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Skip the remaining backoff wait (the network came back). */
  retryNow() {
    if (this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.open();
  }
}
