// Honesty about freshness: a banner per stale source (what failed, since when) and one for a
// lost connection (how long since the last event, when the next try is).

import { el, setText } from './dom.js';
import { formatDuration, parseTime } from './format.js';

const TABLE_NAMES = { accounts: 'Registrations', trunks: 'Trunk status', queue: 'Message queue' };

/** The banner area under the tiles. */
export class Banners {
  /** Empty banners: connecting, no stale source known. */
  constructor() {
    /** @type {Map<string, {table: string, node: string|null, error: string, since: number|null}>} by table (and node) */
    this.stale = new Map();
    /** @type {import('./socket.js').LinkState} */
    this.link = { state: 'connecting', retryAt: null, attempt: 0 };
    this.lastEventAt = Date.now();
    this.everLive = false;
    this.connection = el('div', { class: 'banner banner-connection', role: 'alert', hidden: true });
    this.sources = el('div', { class: 'banner-list' });
    this.root = el('div', { class: 'banners', 'aria-live': 'polite' }, this.connection, this.sources);
  }

  /**
   * Record a `source` message; one fed by several nodes says which of them are stale.
   * @typedef {{node?: string, ok: boolean, error: string|null, since: string}} SourcePart
   * @param {SourcePart & {table: string, nodes?: SourcePart[]}} msg
   */
  source(msg) {
    const table = String(msg.table);
    for (const [key, entry] of this.stale) if (entry.table === table) this.stale.delete(key);
    const parts = Array.isArray(msg.nodes) && msg.nodes.length > 0 ? msg.nodes : [msg];
    for (const part of parts) {
      if (part.ok) continue;
      const node = part.node === undefined ? null : String(part.node);
      this.stale.set(node === null ? table : `${table} ${node}`,
        { table, node, error: String(part.error ?? 'unknown error'), since: parseTime(part.since) });
    }
  }

  /**
   * Record the connection state.
   * @param {import('./socket.js').LinkState} link
   */
  setLink(link) {
    this.link = link;
    if (link.state === 'live') this.everLive = true;
  }

  /** Note that a message arrived just now. */
  event() {
    this.lastEventAt = Date.now();
  }

  /**
   * Redraw the banners (once a second and on changes).
   * @param {import('./format.js').Zone} zone
   * @param {number} now server unix seconds
   */
  render(zone, now) {
    const lost = this.link.state !== 'live' && this.everLive;
    this.connection.hidden = !lost;
    if (lost) {
      const silent = formatDuration((Date.now() - this.lastEventAt) / 1000);
      const retry = this.link.retryAt === null ? 'reconnecting now'
        : `next try in ${Math.max(0, Math.ceil((this.link.retryAt - Date.now()) / 1000))}s`;
      setText(this.connection, `Connection lost — last event ${silent} ago — ${retry} (attempt ${this.link.attempt}). Data shown may be out of date.`);
    }
    const lines = [...this.stale.values()].map(({ table, node, error, since }) => {
      const name = TABLE_NAMES[/** @type {keyof typeof TABLE_NAMES} */ (table)] ?? table;
      const when = since === null ? '' : ` since ${zone.format(since)} (${formatDuration(now - since)})`;
      const where = node === null ? '' : ` of node ${node}`;
      return `${name} source${where} is stale${when}: ${error}`;
    });
    const have = [...this.sources.children].map((node) => node.textContent);
    if (have.length === lines.length && have.every((text, i) => text === lines[i])) return;
    this.sources.replaceChildren(...lines.map((text) => el('div', { class: 'banner banner-stale', role: 'status' }, text)));
  }
}
