// Wires the page together: stores fed by the connection, views, tiles, banners, details,
// alarms, URL state, keyboard shortcuts, the one-second tick and kiosk rotation.

import { AlarmList } from './alarmlist.js';
import { Alarms } from './alarms.js';
import { Banners } from './banners.js';
import { ServerClock } from './clock.js';
import { exportView } from './csv.js';
import { Details } from './details.js';
import { el } from './dom.js';
import { Zone } from './format.js';
import { FrameScheduler } from './frame.js';
import { Header } from './header.js';
import { Notifications } from './notify.js';
import { Session } from './session.js';
import { Connection } from './socket.js';
import { headlines, LiveStats } from './stats.js';
import { TableStore } from './store.js';
import { applyTheme, initialTheme, toggleTheme } from './theme.js';
import { Tiles } from './tiles.js';
import { Sound } from './sound.js';
import { initialViewState, queryFor, readState, writeState } from './url-state.js';
import { linkTarget, VIEWS, viewByName, wallView } from './viewdefs.js';
import { ViewController } from './views.js';

// The widths at which rtm.css lays the page out for phones, and for narrow desks (where the
// details open as a full-height sheet rather than a drawer beside the grid).
const PHONE = matchMedia('(max-width: 600px)');
const NARROW = matchMedia('(max-width: 1100px)');

/** The whole page. */
export class App {
  /** Read the URL state and build every part (nothing is shown until start()). */
  constructor() {
    this.page = readState(location.search);
    this.clock = new ServerClock();
    this.zone = new Zone(null);
    this.frames = new FrameScheduler(() => this.render());
    this.schedule = () => this.frames.request();
    /** @type {Map<string, TableStore>} */
    this.stores = new Map(VIEWS.map((view) => [view.table, new TableStore(view.table)]));
    this.stats = new LiveStats(this.stores, () => this.clock.now(), () => {
      this.tilesDirty = true;
      this.schedule();
    });
    this.detailsDirty = false;
    this.tilesDirty = true;
    this.session = new Session(this.page.kiosk);
    // A details URL opened before hello named the role waits for it here.
    /** @type {import('./session.js').DetailsTarget|null} */
    this.pendingDetails = null;
    this.views = new Map(VIEWS.map((def) => [def.name, this.makeView(def)]));
    this.active = viewByName(this.page.view).name;
    this.sound = new Sound();
    this.notifications = new Notifications();
    this.alarms = new Alarms({
      trunks: /** @type {TableStore} */ (this.stores.get('trunks')), sound: this.sound,
      notifier: this.notifications, repeat: this.page.alarmRepeat,
      onChange: () => { this.tilesDirty = true; this.schedule(); },
    });
    this.alarmList = new AlarmList((id) => this.alarms.acknowledge(id));
    this.header = new Header({
      views: VIEWS, onView: (name) => this.setView(name), onTheme: () => toggleTheme(),
      onSound: () => this.sound.toggle(), soundOn: this.sound.enabled,
      onNotify: () => this.notifications.toggle(), notifyOn: this.notifications.enabled,
      notifySupported: this.notifications.supported,
    });
    this.tiles = new Tiles((name) => this.setView(name));
    this.banners = new Banners();
    this.details = new Details({ stores: this.stores, onClose: () => this.closeDetails() });
    for (const [name, store] of this.stores) store.subscribe((change) => this.storeChanged(name, change));
  }

  /**
   * A view controller with its state from the URL (for the URL's view) or its defaults.
   * @param {import('./viewdefs.js').ViewDef} fullDef
   * @returns {ViewController}
   */
  makeView(fullDef) {
    const def = this.page.kiosk ? wallView(fullDef) : fullDef;
    return new ViewController({
      def, store: /** @type {TableStore} */ (this.stores.get(def.table)), state: initialViewState(this.page, def),
      schedule: this.schedule,
      onStateChange: () => this.saveUrl(), onOpen: (column, row) => this.openDetails(linkTarget(column, row)),
      onExport: (view) => this.exportCsv(view), linkFor: (column, row) => this.linkFor(def.name, column, row),
      now: () => this.clock.now(), paging: this.page.kiosk && this.page.page > 0,
    });
  }

  /** Build the DOM, connect, and start the clocks. */
  start() {
    applyTheme(initialTheme(this.page.kiosk));
    document.body.classList.toggle('kiosk', this.page.kiosk);
    const main = el('main', { class: 'main' }, ...[...this.views.values()].map((v) => v.section), this.details.root);
    document.body.replaceChildren(this.header.root, this.tiles.root, this.alarmList.root, this.banners.root, main);
    if (this.session.detailsAllowed === false) this.offerDetails();
    if (this.page.details) this.openDetails(this.page.details);
    this.setView(this.active);
    document.addEventListener('keydown', (event) => this.shortcut(event));
    new Connection({
      stores: this.stores,
      onHello: (hello) => this.hello(hello),
      onSource: (msg) => {
        this.stats.source(msg);
        this.banners.source(msg);
        this.banners.render(this.zone, this.clock.now());
      },
      onState: (link) => { this.banners.setLink(link); this.header.setLink(link); this.banners.render(this.zone, this.clock.now()); },
      onEvent: () => this.banners.event(),
      preview: () => this.views.get(this.active)?.previewRequest() ?? null,
    }).start();
    this.tickEverySecond();
    if (this.page.kiosk && this.page.rotate) setInterval(() => this.rotate(), this.page.rotate * 1000);
    if (this.page.kiosk && this.page.page) setInterval(() => this.views.get(this.active)?.pager?.next(), this.page.page * 1000);
  }

  /**
   * Whether grids fit their columns to their width instead of scrolling sideways: on a wall
   * (it cannot scroll), a phone, and a desk beside the open details drawer (which would
   * otherwise cover the right-hand columns, cutting one in half).
   * @returns {boolean}
   */
  fitsColumns() {
    if (this.page.kiosk || PHONE.matches) return true;
    return !this.details.root.hidden && !NARROW.matches;
  }

  /**
   * The server greeted us: align clock and zone, show demo flag and user.
   * @param {any} hello
   */
  hello(hello) {
    this.clock.sync(hello.now);
    this.zone = new Zone(hello.tz);
    this.session.greet(hello);
    this.header.setHello(hello.demo === true, this.session.user);
    this.offerDetails();
    this.tick();
  }

  /**
   * Offer details or not, as the session allows: link cells, Enter, and a details URL that was
   * waiting for the role (dropped silently for a display: its URL may come from a desk, it is
   * not an error).
   */
  offerDetails() {
    const allowed = this.session.detailsAllowed === true;
    for (const view of this.views.values()) view.grid.setLinks(allowed);
    const waiting = this.pendingDetails;
    this.pendingDetails = null;
    if (!allowed && this.details.current) this.details.hide();
    if (allowed && waiting) this.openDetails(waiting);
    else this.saveUrl();
  }

  /**
   * A table changed: its stats and the open details (if they show a changed row) follow.
   * @param {string} table
   * @param {import('./store.js').Change} change
   */
  storeChanged(table, change) {
    this.stats.changed(table, change);
    if (this.details.affectedBy(table, change)) this.detailsDirty = true;
    this.schedule();
  }

  /**
   * Tick just after each whole second of the server's clock, not every 1000 ms from whenever
   * the page loaded: expiries and countdowns fall on whole seconds, so the fade before a row
   * leaves is always shown for its full second, even when a busy browser runs timers late.
   */
  tickEverySecond() {
    this.tick();
    const now = this.clock.now();
    setTimeout(() => this.tickEverySecond(), (Math.floor(now) + 1.02 - now) * 1000);
  }

  /** Once a second: countdowns, expiries, ages, banners, clock. */
  tick() {
    const now = this.clock.now();
    for (const view of this.views.values()) view.tick(now);
    this.stats.tick(now);
    this.alarms.tick();
    if (this.details.current?.kind === 'account') this.detailsDirty = true;
    this.banners.render(this.zone, now);
    this.header.setClock(this.zone.formatClock(now));
    this.tilesDirty = true;
    this.schedule();
  }

  /**
   * What cells are formatted with: the server's zone and its time now.
   * @returns {import('./columns.js').CellContext}
   */
  cellContext() {
    return { zone: this.zone, now: this.clock.now() };
  }

  /** The per-frame render: active view, tiles, details (stats recount themselves in idle time). */
  render() {
    const ctx = this.cellContext();
    const fit = this.fitsColumns();
    for (const view of this.views.values()) view.grid.setFit(fit);
    this.views.get(this.active)?.frame(ctx);
    if (this.tilesDirty) this.showStats(ctx.now);
    if (this.detailsDirty) {
      this.detailsDirty = false;
      this.details.render(ctx);
    }
  }

  /**
   * Show the stats in the tiles and view headlines.
   * @param {number} now
   */
  showStats(now) {
    this.tilesDirty = false;
    const ready = this.stats.ready();
    this.tiles.update(this.stats.values, now, this.page.queueAlarm, ready);
    const oldest = this.stats.values.oldestReceived;
    if (ready.queue) this.alarms.queueChanged(oldest, oldest !== null && now - oldest >= this.page.queueAlarm);
    this.tiles.setUnacknowledged(this.alarms.unacknowledged('trunk'), this.alarms.unacknowledged('queue'));
    this.alarmList.render(this.alarms.list(), now, this.page.queueAlarm);
    const lines = headlines(this.stats.values, ready);
    for (const view of this.views.values()) view.setHeadline(lines[view.def.table] ?? '');
  }

  /**
   * Show a view.
   * @param {string} name
   */
  setView(name) {
    this.active = viewByName(name).name;
    for (const [viewName, view] of this.views) view.setActive(viewName === this.active);
    this.header.setView(this.active);
    document.title = `${viewByName(this.active).label} · rtm`;
    this.saveUrl();
  }

  /** Kiosk rotation: the next view. */
  rotate() {
    const at = VIEWS.findIndex((view) => view.name === this.active);
    this.setView(VIEWS[(at + 1) % VIEWS.length].name);
  }

  /**
   * Open the details panel.
   * @param {import('./session.js').DetailsTarget} target
   */
  openDetails(target) {
    const allowed = this.session.detailsAllowed;
    if (allowed === false) return;
    if (allowed === null) this.pendingDetails = target;
    else void this.details.open(target, this.cellContext());
    this.saveUrl();
  }

  /** Close the details panel and give focus back to the grid. */
  closeDetails() {
    this.details.hide();
    this.saveUrl();
    this.views.get(this.active)?.grid.focus();
  }

  /** Write the active view's state (and open details) into the URL. */
  saveUrl() {
    const view = /** @type {ViewController} */ (this.views.get(this.active));
    writeState({ view: this.active, ...view.state, details: this.details.current ?? this.pendingDetails });
  }

  /**
   * The href of a link cell (so "open in new tab" and copied links work).
   * @param {string} viewName
   * @param {import('./viewdefs.js').Column} column
   * @param {Record<string, any>} row
   * @returns {string}
   */
  linkFor(viewName, column, row) {
    const view = /** @type {ViewController} */ (this.views.get(viewName));
    return `${location.pathname}${queryFor(location.search, { view: viewName, ...view.state, details: linkTarget(column, row) })}`;
  }

  /**
   * Download the view's filtered rows as CSV.
   * @param {ViewController} view
   */
  exportCsv(view) {
    const ctx = this.cellContext();
    if (view.dirty) view.rebuild(ctx.now);
    exportView(view.def, view.visibleRows(), ctx);
  }

  /**
   * Page-wide keys: 1/2/3 switch views, / focuses the filter box, Escape closes details or
   * clears the filter.
   * @param {KeyboardEvent} event
   */
  shortcut(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = /** @type {HTMLElement} */ (event.target);
    const typing = target.matches('input, select, textarea');
    const view = /** @type {ViewController} */ (this.views.get(this.active));
    if (event.key === 'Escape') {
      if (this.details.current) this.closeDetails();
      else if (typing && view.state.q) view.setFilterText('');
      return;
    }
    if (typing) return;
    const index = ['1', '2', '3'].indexOf(event.key);
    if (index >= 0) this.setView(VIEWS[index].name);
    else if (event.key === '/') {
      event.preventDefault();
      view.search.focus();
    }
  }
}
