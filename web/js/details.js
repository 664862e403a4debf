// The details panel: an account (its directory entry and live contacts) or a queued message,
// opened from the Username and Received cells. Read as this session (session.js), then kept
// live from the stores while open.

import { cellText } from './columns.js';
import { clear, el } from './dom.js';
import { fetchDetails } from './session.js';

/** Message fields in the order of the original "Show Message" page. */
const MESSAGE_FIELDS = [
  ['id', 'Id'], ['from_account', 'From Account'], ['to_account', 'To Account'], ['uuid', 'Uuid'],
  ['api_version', 'Api Version'], ['from', 'From'], ['from_seq', 'From Seq'], ['managed', 'Managed'],
  ['received', 'Received'], ['sent', 'Sent'], ['status', 'Status'], ['to', 'To'], ['to_seq', 'To Seq'],
];
// Directory fields holding unix times (seconds or milliseconds).
const TIME_FIELDS = new Set(['created', 'updated', 'modified', 'last_login']);
const CONTACT_COLUMNS = [
  { key: 'contact', label: 'Contact' }, { key: 'ip', label: 'IpAddr' }, { key: 'port', label: 'Port' },
  { key: 'transport', label: 'Transport' }, { key: 'expires', label: 'Expires', kind: 'time' },
  { key: 'remaining', label: 'Remaining', kind: 'remaining', from: 'expires' },
  { key: 'user_agent', label: 'UserAgent' }, { key: 'node', label: 'Node' },
];

/** The side panel. */
export class Details {
  /**
   * @param {{stores: Map<string, import('./store.js').TableStore>, onClose: () => void}} options
   */
  constructor({ stores, onClose }) {
    this.stores = stores;
    /** @type {{kind: 'account'|'message', key: string}|null} */
    this.current = null;
    // The answer of the details API (null: not yet).
    /** @type {import('./session.js').DetailsAnswer|null} */
    this.fetched = null;
    this.generation = 0;
    // Ids of the open account's contacts, kept from each diff (null: scan the store once), so a
    // redraw costs O(contacts) rather than a pass over 100k rows every second.
    /** @type {Set<string>|null} */
    this.contactIds = null;
    this.heading = el('h2', { id: 'details-title' });
    this.body = el('div', { class: 'details-body' });
    const close = el('button', { type: 'button', class: 'btn close', 'aria-label': 'Close details', onclick: onClose }, '✕');
    this.root = el('aside', {
      class: 'details', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'details-title', hidden: true,
    }, el('div', { class: 'details-head' }, this.heading, close), this.body);
    this.root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') onClose();
    });
    this.close = close;
  }

  /**
   * Open the panel on an account or a message.
   * @param {{kind: 'account'|'message', key: string}} target
   * @param {import('./columns.js').CellContext} ctx
   */
  async open(target, ctx) {
    this.current = target;
    this.fetched = null;
    this.contactIds = null;
    const generation = ++this.generation;
    this.root.hidden = false;
    this.heading.textContent = target.kind === 'account' ? `Account ${target.key}` : 'Show Message';
    this.render(ctx);
    this.close.focus();
    const answer = await fetchDetails(target);
    if (generation !== this.generation) return;
    this.fetched = answer;
    this.render(ctx);
  }

  /** Close the panel. */
  hide() {
    this.current = null;
    this.contactIds = null;
    this.generation += 1;
    this.root.hidden = true;
  }

  /**
   * Redraw from the fetched record and the live store.
   * @param {import('./columns.js').CellContext} ctx
   */
  render(ctx) {
    if (!this.current) return;
    clear(this.body);
    if (this.fetched?.status === 403) {
      this.body.append(notice(FORBIDDEN, `Your sign-in may not open ${this.current.kind} details (wall displays see only the live tables).`));
      return;
    }
    if (this.current.kind === 'account') this.renderAccount(this.current.key, ctx);
    else this.renderMessage(this.current.key, ctx);
  }

  /**
   * Directory fields and live contacts of one account.
   * @param {string} username
   * @param {import('./columns.js').CellContext} ctx
   */
  renderAccount(username, ctx) {
    const status = this.fetched?.status;
    const directory = this.fetched?.body?.directory;
    const contacts = this.contacts(username);
    if (this.fetched === null) this.body.append(el('p', { class: 'muted' }, 'Loading…'));
    else if (directory && typeof directory === 'object') {
      const pairs = Object.entries(directory).map(([k, v]) => [label(k), TIME_FIELDS.has(k) && typeof v === 'number' && v > 0
        ? ctx.zone.format(v > 1e11 ? v / 1000 : v) : display(v)]);
      this.body.append(el('h3', {}, 'Directory'), definitionList(/** @type {Array<[string, string]>} */ (pairs)));
    } else if (status === 200 && !contacts.length) {
      this.body.append(notice(GONE, `${username} is no longer registered (and not in the account directory).`));
    } else if (status === 200) {
      this.body.append(el('p', { class: 'muted' }, 'Not in the account directory.'));
    } else this.body.append(notice(FAILED, failure('the directory entry', status)));
    this.body.append(el('h3', {}, `Live contacts (${contacts.length})`));
    if (!contacts.length) {
      this.body.append(el('p', { class: 'muted' }, 'No registered contact.'));
      return;
    }
    for (const row of contacts) {
      this.body.append(definitionList(CONTACT_COLUMNS.map((column) => [column.label, cellText(column, row, ctx)]), 'contact-card'));
    }
  }

  /**
   * One queued message, live from the store when still queued.
   * @param {string} id
   * @param {import('./columns.js').CellContext} ctx
   */
  renderMessage(id, ctx) {
    const status = this.fetched?.status;
    const live = this.stores.get('queue')?.rows.get(id);
    const fetched = this.fetched?.body;
    const row = live ?? (fetched?.queued === false ? null : fetched);
    if (!row) {
      if (this.fetched === null) this.body.append(el('p', { class: 'muted' }, 'Loading…'));
      else if (status === 200) this.body.append(notice(GONE, 'This message has left the queue (delivered or expired).'));
      else this.body.append(notice(FAILED, failure('the message', status)));
      return;
    }
    if (!live && this.stores.get('queue')?.ready) this.body.append(notice(GONE, 'This message has left the queue; its last known state:'));
    const received = { key: 'received', label: 'Received', kind: 'time-ms' };
    this.body.append(definitionList(MESSAGE_FIELDS.map(([key, name]) => [
      name, key === 'received' ? cellText(received, row, ctx) : display(row[key]),
    ])));
  }

  /**
   * The open account's live contacts, from the kept ids (scanning the store only when unknown).
   * @param {string} username
   * @returns {Array<Record<string, any>>}
   */
  contacts(username) {
    const rows = this.stores.get('accounts')?.rows ?? new Map();
    if (this.contactIds === null) {
      this.contactIds = new Set();
      for (const [id, row] of rows) if (row.username === username) this.contactIds.add(id);
    }
    return [...this.contactIds].map((id) => rows.get(id)).filter((row) => row !== undefined);
  }

  /**
   * Whether a store change touches what the panel shows (so it should redraw); keeps the open
   * account's contact ids up to date. Costs O(diff), never a pass over the table.
   * @param {string} table
   * @param {import('./store.js').Change} change
   * @returns {boolean}
   */
  affectedBy(table, change) {
    const current = this.current;
    if (!current) return false;
    if (current.kind === 'message') {
      return table === 'queue' && (change.reset || change.added.has(current.key) || change.removed.has(current.key)
        || change.changed.has(current.key));
    }
    if (table !== 'accounts') return false;
    if (change.reset || this.contactIds === null) {
      this.contactIds = null;
      return true;
    }
    const ids = this.contactIds;
    const rows = this.stores.get('accounts')?.rows;
    let touched = false;
    for (const id of change.removed) touched = ids.delete(id) || touched;
    for (const id of [...change.added, ...change.changed.keys()]) {
      if (rows?.get(id)?.username === current.key) {
        ids.add(id);
        touched = true;
      } else touched = ids.delete(id) || touched;
    }
    return touched;
  }
}

const FORBIDDEN = 'forbidden';
const GONE = 'gone';
const FAILED = 'failed';

/**
 * A one-line notice in the panel (role=status, so screen readers hear it).
 * @param {string} kind forbidden, gone or failed (styles it)
 * @param {string} text
 * @returns {HTMLElement}
 */
function notice(kind, text) {
  return el('p', { class: `notice notice-${kind}`, role: 'status' }, text);
}

/**
 * Why a fetch gave nothing, in words.
 * @param {string} what
 * @param {number|undefined} status 0: no answer
 * @returns {string}
 */
function failure(what, status) {
  if (status === 401) return 'Your session has ended: going to the sign-in page…';
  return status ? `Could not load ${what}: the server answered ${status}.` : `Could not load ${what}: no answer from the server.`;
}

/**
 * A <dl> of label/value pairs.
 * @param {Array<[string, string]>} pairs
 * @param {string} [className]
 * @returns {HTMLElement}
 */
function definitionList(pairs, className = 'fields') {
  const list = el('dl', { class: className });
  for (const [name, value] of pairs) list.append(el('dt', {}, name), el('dd', { title: value.length > 40 ? value : null }, value));
  return list;
}

/**
 * A field name as a label: "caller_id_2" → "Caller id 2".
 * @param {string} key
 * @returns {string}
 */
function label(key) {
  const text = key.replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * A JSON value as text.
 * @param {unknown} value
 * @returns {string}
 */
function display(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
