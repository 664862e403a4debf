"""The page's pure modules, imported and exercised inside the real browser (no Node needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server import store

from .. import credentials
from ..live_server import RtmServer
from .conftest import cookies_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One signed-in page on one server for all the module tests (they only import modules)."""
    server = RtmServer(tmp_path_factory.mktemp("modules"))
    store.migrate(server.db)
    credentials.grant(server)
    server.start()
    context = browser.new_context()
    context.add_cookies(cookies_for(server))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    yield page
    context.close()
    server.stop()
    assert not errors, errors


# What the bodies share: `load(name)` imports /static/js/<name>.js, `iso(unixSeconds)` makes a
# wire timestamp, `seeded(seed)` a reproducible `rand(n)` (0 <= rand(n) < n) for random diffs.
PRELUDE = """
    const load = (n) => import(`/static/js/${n}.js`);
    const iso = (t) => new Date(t * 1000).toISOString();
    const seeded = (seed) => (n) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
    };
"""


def run(page: Any, body: str) -> Any:
    """Evaluate an async function body after PRELUDE (load, iso, seeded)."""
    return page.evaluate(f"async () => {{ {PRELUDE} {body} }}")


def test_zone_formats_like_the_original(page: Any) -> None:
    result = run(
        page,
        """
        const { Zone, formatDuration } = await load('format');
        const rome = new Zone({ name: 'Europe/Rome', transitions: [
            [1364691600, 7200, 'CEST'], [1382835600, 3600, 'CET']] });
        return [rome.format(1381418482), rome.format(1389850837.105, true),
                rome.format(1382835599), rome.format(1382835600), new Zone(null).format(0),
                [5, 65, 3725, 90061].map(formatDuration)];
    """,
    )
    assert result == [
        "2013-10-10 17:21:22 CEST",
        "2014-01-16 06:40:37.105 CET",
        "2013-10-27 02:59:59 CEST",
        "2013-10-27 02:00:00 CET",
        "1970-01-01 00:00:00 UTC",
        ["5s", "1m 05s", "1h 02m", "1d 1h"],
    ]


def test_parsed_times_stay_right_across_cache_generations(page: Any) -> None:
    """parseTime's cache turns over (every 10 minutes, or at its limit) without a wrong or
    lost answer: the same string parses to the same seconds before, across and after."""
    result = run(
        page,
        """
        const { parseTime } = await load('format');
        const realNow = Date.now;
        let offset = 0;
        Date.now = () => realNow() + offset;
        try {
            const stamps = Array.from({ length: 2000 }, (_, i) => iso(1_700_000_000 + i * 7.25));
            const first = stamps.map(parseTime);
            offset += 11 * 60 * 1000;  // a generation later
            const second = stamps.map(parseTime);
            offset += 11 * 60 * 1000;
            for (let i = 0; i < 140000; i++) parseTime(iso(1_800_000_000 + i));  // past the limit
            const third = stamps.map(parseTime);
            const expected = stamps.map((s) => Date.parse(s) / 1000);
            return [first, second, third].every((got) => got.join() === expected.join())
                && parseTime('not a time') === null && parseTime('') === null;
        } finally {
            Date.now = realNow;
        }
    """,
    )
    assert result is True


def test_store_snapshot_pages_and_diffs(page: Any) -> None:
    result = run(
        page,
        """
        const { TableStore } = await load('store');
        const s = new TableStore('accounts');
        const events = [];
        s.subscribe((c) => events.push({
            reset: c.reset, added: [...c.added], removed: [...c.removed],
            changed: [...c.changed].map(([id, f]) => [id, [...f].sort()]),
        }));
        s.applySnapshot({ seq: 7, rows: [{ id: 1, a: 1 }], final: false });
        const midway = s.rows.size;
        s.applySnapshot({ seq: 7, rows: [{ id: 2, a: 2 }, { id: 3, a: 3 }], final: true });
        const r1 = s.applyDiff({
            seq: 8, upsert: [{ id: 2, a: 20 }, { id: 4, a: 4 }, { id: 3, b: 9 }], delete: [3, 1],
        });
        const replaced = s.rows.get('3');
        const r2 = s.applyDiff({ seq: 8, upsert: [{ id: 2, a: 99 }], delete: [] });
        const r3 = s.applyDiff({ seq: 10, upsert: [], delete: [] });
        return { midway, r1, r2, r3, seq: s.seq, rows: [...s.rows.entries()], replaced, events };
    """,
    )
    assert result["midway"] == 0  # a half-received snapshot is never shown
    assert (result["r1"], result["r2"], result["r3"], result["seq"]) == ("applied", "old", "gap", 8)
    # Deletes first, then upserts: id 3 deleted and upserted is a replacement, not a merge.
    assert result["replaced"] == {"id": 3, "b": 9}
    assert dict(result["rows"]) == {
        "2": {"id": 2, "a": 20},
        "3": {"id": 3, "b": 9},
        "4": {"id": 4, "a": 4},
    }
    assert result["events"] == [
        {"reset": True, "added": [], "removed": [], "changed": []},
        {
            "reset": False,
            "added": ["4", "3"],
            "removed": ["1"],
            "changed": [["2", ["a"]], ["3", ["b", "id"]]],
        },
    ]


def test_csv_fields_are_quoted_and_defused(page: Any) -> None:
    result = run(
        page,
        """
        const { csvField } = await load('csv');
        const values = ['plain', 'say "hi"', '=1+2', '+1', '-1', '@x', '\\tx', 'a,b\\nc', 42, -5];
        return values.map(csvField);
    """,
    )
    assert result == [
        '"plain"',
        '"say ""hi"""',
        '"\'=1+2"',
        '"\'+1"',
        '"\'-1"',
        '"\'@x"',
        '"\'\tx"',
        '"a,b\nc"',
        "42",
        "-5",
    ]


def test_backoff_is_capped_full_jitter(page: Any) -> None:
    result = run(
        page,
        """
        const { backoffDelay } = await load('socket');
        const first = Array.from({ length: 200 }, () => backoffDelay(0));
        const late = Array.from({ length: 200 }, () => backoffDelay(30));
        return [Math.min(...first), Math.max(...first), Math.min(...late), Math.max(...late)];
    """,
    )
    low0, high0, low30, high30 = result
    assert 100 <= low0 and high0 <= 500
    assert 100 <= low30 < 4000 < high30 <= 8000  # spread over the whole capped range


def test_url_state_round_trips_and_keeps_unknown_parameters(page: Any) -> None:
    result = run(
        page,
        """
        const { readState, queryFor } = await load('url-state');
        const q = queryFor('?display=abc&kiosk=1&view=accounts', {
            view: 'trunks', sort: 'status', dir: 'desc',
            q: 'a b&c', filters: { status: 'FAILED', transport: '' }, details: null });
        const back = readState(q);
        const plain = queryFor('', {
            view: 'accounts', sort: 'username', dir: 'asc', q: '', filters: {}, details: null,
        });
        const bad = readState('?view=nope&sort=evil&dir=sideways&rotate=-3&queue_alarm=x');
        return { q, back, plain, bad };
    """,
    )
    assert (
        result["q"]
        == "?display=abc&kiosk=1&view=trunks&sort=status&dir=desc&q=a+b%26c&status=FAILED"
    )
    back = result["back"]
    assert (back["view"], back["sort"], back["dir"], back["q"], back["kiosk"]) == (
        "trunks",
        "status",
        "desc",
        "a b&c",
        True,
    )
    assert back["filters"] == {"status": "FAILED", "transport": ""}
    assert result["plain"] == ""
    bad = result["bad"]
    assert (bad["view"], bad["sort"], bad["dir"], bad["rotate"], bad["queueAlarm"]) == (
        "accounts",
        None,
        None,
        0,
        300,
    )


def test_index_drops_expired_rows_filters_and_sorts(page: Any) -> None:
    result = run(
        page,
        """
        const { buildIndex } = await load('rowindex');
        const { viewByName } = await load('viewdefs');
        const now = 1_000_000;
        const make = (id, username, group, transport, port, expires) =>
            [id, { id, username, group, transport, port, expires }];
        const rows = new Map([
            make('a', 'zed', 'NOC', 'UDP', 1, iso(now + 60)),
            make('b', 'amy', 'NOC', 'TCP', 3, iso(now + 30)),
            make('c', 'bob', 'Ops', 'UDP', 2, iso(now - 5)),
            make('d', 'cal', 'NOC', 'UDP', 2, null),
        ]);
        const state = (sort, dir, q, filters) => ({ sort, dir, q, filters });
        const view = viewByName('accounts');
        const all = buildIndex(rows, view, state('username', 'asc', '', {}), now);
        const nocOnly = { group: 'NOC', transport: '' };
        const noc = buildIndex(rows, view, state('port', 'desc', '', nocOnly), now);
        const text = buildIndex(rows, view, state('expires', 'asc', 'A', {}), now);
        return { all, noc: noc.ids, text: text.ids };
    """,
    )
    assert result["all"]["ids"] == ["b", "d", "a"]  # bob expired: gone
    assert result["all"]["live"] == 3
    assert result["all"]["nextChange"] == 1_000_031
    assert result["all"]["choices"] == {"group": ["NOC"], "transport": ["TCP", "UDP"]}
    assert result["noc"] == ["b", "d", "a"]
    assert result["text"] == ["b", "d"]  # "amy" and "cal"; never-expiring sorts last


def test_a_sort_the_view_lacks_still_reorders_on_its_fallback_column(page: Any) -> None:
    """``?sort=`` naming a column this view lacks sorts by the view's default (username):
    a changed username must then count as moving the row, as the index sorts by it."""
    result = run(
        page,
        """
        const { affectsIndex } = await load('rowindex');
        const { viewByName } = await load('viewdefs');
        const view = viewByName('accounts');
        const state = { sort: 'no-such-column', dir: 'asc', q: '', filters: {} };
        return affectsIndex(new Set(['username']), view, state);
    """,
    )
    assert result is True


def test_live_index_matches_a_full_rebuild_after_random_diffs(page: Any) -> None:
    """Incremental upkeep (inserts, deletes, key changes, expiries) always equals filter + sort."""
    mismatches = run(
        page,
        """
        const { LiveIndex, buildIndex } = await load('rowindex');
        const { TableStore } = await load('store');
        const { viewByName } = await load('viewdefs');
        const rand = seeded(42);
        let now = 1_000_000;
        const row = (i) => ({
            id: `r${i}`, username: `u${rand(50)}`, group: ['NOC', 'Ops', ''][rand(3)],
            transport: ['UDP', 'TCP'][rand(2)], port: rand(20), user_agent: `ua${rand(5)}`,
            expires: rand(10) === 0 ? null : iso(now + rand(40)) });
        const view = viewByName('accounts');
        const states = [
            { sort: 'username', dir: 'asc', q: '', filters: { group: '', transport: '' } },
            { sort: 'port', dir: 'desc', q: '', filters: { group: 'NOC', transport: '' } },
            { sort: 'expires', dir: 'asc', q: 'u1', filters: { group: '', transport: 'UDP' } },
        ];
        const bad = [];
        let ghostsSeen = 0;
        for (const state of states) {
            const store = new TableStore('accounts');
            const first = Array.from({ length: 300 }, (_, i) => row(i));
            store.applySnapshot({ seq: 1, rows: first, final: true });
            const index = new LiveIndex(view);
            index.rebuild(store.rows, state, now);
            store.subscribe((change) => {
                if (!change.reset) index.apply(change, store.rows, state, now);
            });
            let next = 300;
            for (let step = 0; step < 150; step++) {
                const ids = [...store.rows.keys()];
                const upsert = [];
                for (let k = 0; k < 5; k++) upsert.push(row(next++));
                for (let k = 0; k < 5; k++) {
                    const id = ids[rand(ids.length)];
                    const fresh = row(0);
                    const fields = ['username', 'group', 'port', 'expires', 'user_agent'];
                    const field = [...fields, 'transport'][rand(6)];
                    upsert.push({ id, [field]: fresh[field] });
                }
                const del = Array.from({ length: 4 }, () => ids[rand(ids.length)]);
                for (const u of upsert) u.id = String(u.id);
                store.applyDiff({ seq: store.seq + 1, upsert, delete: del });
                now += 1;
                index.prune(store.rows, now);
                const full = buildIndex(store.rows, view, state, now).ids;
                // Rows deleted at expiry stay as fading ghosts until their fade ends.
                ghostsSeen += index.ghosts.size;
                const shown = index.ids.filter((id) => !index.ghosts.has(id));
                if (full.join() !== shown.join()) {
                    bad.push({ sort: state.sort, step });
                    break;
                }
            }
        }
        return { bad, ghostsSeen };
    """,
    )
    assert mismatches["bad"] == []
    assert mismatches["ghostsSeen"] > 0  # the fade-out path was exercised


def test_one_row_change_costs_no_pass_over_the_table(page: Any) -> None:
    """At scale a diff touching a few rows finds them by binary search (no scan of the ids),
    needs no stats recount unless a counted field changed, and expiries leave the same way."""
    result = run(
        page,
        """
        const { LiveIndex, buildIndex } = await load('rowindex');
        const { TableStore } = await load('store');
        const { viewByName } = await load('viewdefs');
        const { changesStats } = await load('stats');
        const now = 1_000_000;
        const view = viewByName('accounts');
        const filters = { group: '', transport: '' };
        const state = { sort: 'username', dir: 'asc', q: '', filters };
        const store = new TableStore('accounts');
        store.applySnapshot({ seq: 1, final: true, rows: Array.from({ length: 20000 }, (_, i) => ({
            id: `r${i}`, username: `u${(i * 7919) % 20000}`, user_agent: 'a',
            expires: iso(now + 100 + (i % 5000)) })) });
        const index = new LiveIndex(view);
        index.rebuild(store.rows, state, now);
        let scanned = 0;
        const remove = index.remove.bind(index);
        index.remove = (ids) => { scanned += ids.length; remove(ids); };
        const changes = [];
        store.subscribe((change) => {
            changes.push(change);
            index.apply(change, store.rows, state, now);
        });
        // A re-registration (expires moves on: the row is re-placed), a deletion, a new contact.
        const upsert = [{ id: 'r5', expires: iso(now + 500) },
                        { id: 'new', username: 'u5x', expires: iso(now + 300) }];
        store.applyDiff({ seq: 2, upsert, delete: ['r9'] });
        store.applyDiff({ seq: 3, upsert: [{ id: 'r6', user_agent: 'b' }] });
        index.prune(store.rows, now + 101);
        const full = buildIndex(store.rows, view, state, now + 101).ids;
        return { scanned, same: full.join() === index.ids.join(), shown: index.ids.length,
                 stats: changes.map((c) => changesStats('accounts', c)) };
    """,
    )
    assert result["scanned"] == 0
    assert result["same"]
    assert result["shown"] == 20_000 + 1 - 1 - 4  # one new, one deleted, four expired
    assert result["stats"] == [True, False]  # a User-Agent change needs no recount


def test_re_registrations_leave_no_growing_queue_of_expiries(page: Any) -> None:
    """Each re-registration queues the row's new expiry; the old entries are dropped once
    they outnumber the rows (the soak's desk heap grew ~0.5 MiB a minute until a restart),
    and rows still leave at their expiry, as a rebuild says."""
    result = run(
        page,
        """
        const { LiveIndex, buildIndex } = await load('rowindex');
        const { TableStore } = await load('store');
        const { viewByName } = await load('viewdefs');
        let now = 1_000_000;
        const view = viewByName('accounts');
        const filters = { group: '', transport: '' };
        const state = { sort: 'username', dir: 'asc', q: '', filters };
        const store = new TableStore('accounts');
        store.applySnapshot({ seq: 1, final: true, rows: Array.from({ length: 500 }, (_, i) => ({
            id: `r${i}`, username: `u${i}`, expires: iso(now + 3600) })) });
        const index = new LiveIndex(view);
        index.rebuild(store.rows, state, now);
        store.subscribe((change) => index.apply(change, store.rows, state, now));
        let longest = 0;
        for (let n = 0; n < 20000; n++) {  // 40 re-registrations of each row, an hour ahead
            const short = n >= 19990;  // the last ten lapse in a second
            const expires = iso(now + (short ? 1 : 3600));
            const upsert = [{ id: `r${n % 500}`, expires }];
            store.applyDiff({ seq: store.seq + 1, upsert, delete: [] });
            longest = Math.max(longest, index.leaving.length);
            if (n % 100 === 0) { now += 1; index.prune(store.rows, now); }
        }
        now += 30;
        index.prune(store.rows, now);
        const full = buildIndex(store.rows, view, state, now).ids;
        return { longest, same: full.join() === index.ids.join(), shown: index.ids.length };
    """,
    )
    assert result["longest"] <= 2 * 500 + 1024 + 1
    assert result["same"]
    assert result["shown"] == 490  # the short ones left


def test_details_follow_only_their_own_rows(page: Any) -> None:
    result = run(
        page,
        """
        const { Details } = await load('details');
        const { TableStore } = await load('store');
        const accounts = new TableStore('accounts');
        const queue = new TableStore('queue');
        const details = new Details({ stores: new Map([['accounts', accounts], ['queue', queue]]),
                                      onClose: () => {} });
        const seen = [];
        accounts.subscribe((c) => seen.push(details.affectedBy('accounts', c)));
        accounts.applySnapshot({ seq: 1, final: true, rows: [
            { id: 'a1', username: 'alice' }, { id: 'b1', username: 'bob' }] });
        details.current = { kind: 'account', key: 'alice' };
        details.contactIds = null;
        const before = details.contacts('alice').map((r) => r.id);
        accounts.applyDiff({ seq: 2, upsert: [{ id: 'b1', user_agent: 'x' }] });
        accounts.applyDiff({ seq: 3, upsert: [{ id: 'a2', username: 'alice' }] });
        accounts.applyDiff({ seq: 4, upsert: [], delete: ['a1'] });
        return { before, seen, after: details.contacts('alice').map((r) => r.id) };
    """,
    )
    assert result == {"before": ["a1"], "seen": [False, False, True, True], "after": ["a2"]}


def test_account_counter_matches_a_full_count_after_random_diffs(page: Any) -> None:
    """Registrations counted diff by diff equal a from-scratch count, expiries included."""
    result = run(
        page,
        """
        const { AccountCounter, accountStats } = await load('stats');
        const { TableStore } = await load('store');
        const rand = seeded(7);
        let now = 1_000_000;
        const row = (i) => ({ id: `r${i}`, username: `u${rand(40)}`,
            expires: rand(10) === 0 ? null : iso(now + rand(30) - 3) });
        const store = new TableStore('accounts');
        const counter = new AccountCounter();
        store.subscribe((change) => counter.apply(change, store.rows, now));
        store.applySnapshot({ seq: 1, rows: Array.from({ length: 200 }, (_, i) => row(i)),
                              final: true });
        const bad = [];
        let next = 200;
        let recounts = 0;
        for (let step = 0; step < 300; step++) {
            const ids = [...store.rows.keys()];
            const upsert = [row(next++)];
            for (let k = 0; k < 4; k++) {
                const id = ids[rand(ids.length)];
                const fresh = row(0);
                const field = ['username', 'expires', 'user_agent'][rand(3)];
                upsert.push({ id, [field]: fresh[field] });
            }
            const del = [ids[rand(ids.length)], ids[rand(ids.length)]];
            store.applyDiff({ seq: store.seq + 1, upsert, delete: del });
            now += rand(3);
            // What the page does once a second: a passed expiry means a full recount.
            if (now >= counter.nextChange) {
                counter.recount(store.rows, now);
                recounts += 1;
            }
            const want = accountStats(store.rows, now);
            const got = counter.counts();
            if (got.users !== want.users || got.contacts !== want.contacts) {
                bad.push({ step, got, want });
                break;
            }
        }
        return { bad, recounts };
    """,
    )
    assert result["bad"] == []
    assert result["recounts"] > 0  # the expiry path was exercised


def test_session_offers_details_to_people_only_once_hello_says_who(page: Any) -> None:
    """Unknown before hello, never in kiosk or as a display, yes for a person or no sign-in."""
    result = run(
        page,
        """
        const { Session } = await load('session');
        const after = (kiosk, hello) => {
            const session = new Session(kiosk);
            const before = session.detailsAllowed;
            session.greet(hello);
            return [before, session.detailsAllowed, session.user];
        };
        return {
            operator: after(false, { user: { name: 'olga', role: 'operator' } }),
            display: after(false, { user: { name: 'wall', role: 'display' } }),
            kiosk: after(true, { user: { name: 'ada', role: 'admin' } }),
            nobody: after(false, { user: 'not an object' }),
        };
    """,
    )
    assert result == {
        "operator": [None, True, {"name": "olga", "role": "operator"}],
        "display": [None, False, {"name": "wall", "role": "display"}],
        "kiosk": [False, False, {"name": "ada", "role": "admin"}],
        "nobody": [None, True, None],
    }


def test_a_view_starts_in_the_urls_state_and_a_wall_shows_problems_first(page: Any) -> None:
    """Only the URL's view takes its sort and filters; a wall drops kiosk:false columns."""
    result = run(
        page,
        """
        const { readState, initialViewState } = await load('url-state');
        const { viewByName, wallView } = await load('viewdefs');
        const page = readState('?view=trunks&sort=host&status=FAILED&q=x');
        const wall = wallView(viewByName('trunks'));
        return {
            trunks: initialViewState(page, viewByName('trunks')),
            accounts: initialViewState(page, viewByName('accounts')),
            wallSort: wall.sort,
            wallHasSince: wall.columns.some((c) => c.key === 'since'),
        };
    """,
    )
    assert result == {
        "trunks": {
            "sort": "host",
            "dir": "asc",
            "q": "x",
            "filters": {"status": "FAILED", "transport": ""},
        },
        "accounts": {
            "sort": "username",
            "dir": "asc",
            "q": "",
            "filters": {"group": "", "transport": "", "expires": ""},
        },
        "wallSort": {"key": "status", "dir": "asc"},
        "wallHasSince": False,
    }
