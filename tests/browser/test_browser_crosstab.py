"""The framework-free JS client in real Chromium, through the demo page (`GET /`),
against the standalone server and a real PostgreSQL.

"locks" runs as the browser can (Web Locks elect the master, BroadcastChannel
carries notifications); "storage" forces the fallback on localStorage alone.
"""

from __future__ import annotations

import contextlib
import time

import psycopg2
import pytest
from browser_helpers import fast_retry, now_ms, wait_for_one_master, wait_until

from imbus import store

MODES = {"locks": "", "storage": "?storage=1"}


def send_many(srv, channel, texts):
    for text in texts:
        srv.send(channel, {"text": text, "sent_at": now_ms()})


def texts_of(page):
    return [entry["message"]["text"] for entry in page.received() if isinstance(entry["message"], dict)]


def test_a_notification_sent_from_python_shows_in_well_under_a_second(server, open_demo, polls):
    srv = server()
    page = open_demo(srv)
    wait_until([page], lambda: len(polls.in_flight) == 1)

    srv.send("demo", {"text": "ping", "sent_at": now_ms()})

    [entry] = page.wait_received(1, timeout=2000)
    assert entry["channel"] == "demo"
    assert entry["message"]["text"] == "ping"
    assert entry["latency"] < 500, f"send -> page took {entry['latency']:.0f} ms"
    assert page.page.locator("#feed .feed-text").first.inner_text() == "ping"


@pytest.mark.parametrize("mode", MODES)
def test_many_tabs_share_one_poll_and_each_gets_every_notification_once(mode, server, open_demo, polls):
    srv = server()
    pages = [open_demo(srv, MODES[mode]) for _ in range(3)]
    master = wait_for_one_master(pages)
    wait_until(pages, lambda: len(polls.in_flight) == 1)
    pages[0].wait(300)
    polls.reset_peak()

    send_many(srv, "demo", [f"message {n}" for n in range(5)])
    for page in pages:
        page.wait_received(5)
    pages[0].wait(300)

    assert polls.most_in_flight == 1
    assert polls.pages_polling() == [master.page]
    assert {poll["page"] for poll in polls.sent} == {master.page}
    for page in pages:
        assert texts_of(page) == [f"message {n}" for n in range(5)]
        assert len(set(page.received_ids())) == 5
    assert not any(page.errors for page in pages)


@pytest.mark.parametrize("mode", MODES)
def test_closing_the_master_tab_hands_over_without_losing_anything(mode, server, open_demo, polls):
    srv = server()
    pages = [open_demo(srv, MODES[mode]) for _ in range(3)]
    master = wait_for_one_master(pages)
    send_many(srv, "demo", ["before"])
    for page in pages:
        page.wait_received(1)
    last = master.last()

    others = [page for page in pages if page is not master]
    master.page.close()
    send_many(srv, "demo", ["while handing over 1", "while handing over 2"])
    new_master = wait_for_one_master(others, timeout=10)
    send_many(srv, "demo", ["after"])

    expected = ["before", "while handing over 1", "while handing over 2", "after"]
    for page in others:
        page.wait_received(4, timeout=10000)
        assert texts_of(page) == expected
    first_poll = next(poll for poll in polls.sent if poll["page"] is new_master.page)
    assert first_poll["params"]["last"] >= last


def crash(page):
    """Kills the tab's renderer: no pagehide, no goodbye, like a crashed tab."""
    from playwright.sync_api import Error as PlaywrightError

    with contextlib.suppress(PlaywrightError):
        page.page.goto("chrome://crash", timeout=3000)


@pytest.mark.parametrize("mode", MODES)
def test_a_crashed_master_tab_is_replaced_within_seconds_without_losing_anything(mode, server, open_demo):
    srv = server()
    pages = [open_demo(srv, MODES[mode]) for _ in range(3)]
    master = wait_for_one_master(pages)
    send_many(srv, "demo", ["before"])
    for page in pages:
        page.wait_received(1)

    others = [page for page in pages if page is not master]
    crash(master)
    send_many(srv, "demo", ["after the crash"])
    started = time.monotonic()
    wait_for_one_master(others, timeout=10)
    takeover = time.monotonic() - started

    for page in others:
        page.wait_received(2, timeout=10000)
        assert texts_of(page) == ["before", "after the crash"]
    assert takeover < (1 if mode == "locks" else 8), f"takeover took {takeover:.1f} s"


def test_tabs_fall_back_to_heartbeats_when_web_locks_are_refused(server, context, open_demo):
    context.add_init_script("navigator.locks.request = () => Promise.reject(new DOMException('no', 'SecurityError'));")
    srv = server()
    pages = [open_demo(srv) for _ in range(2)]

    wait_for_one_master(pages)
    send_many(srv, "demo", ["still delivered"])

    for page in pages:
        page.wait_received(1)
        assert texts_of(page) == ["still delivered"]


def test_adding_a_channel_restarts_the_pending_poll_at_once(server, open_demo, polls):
    srv = server()
    page = open_demo(srv)
    wait_until([page], lambda: len(polls.in_flight) == 1)
    page.wait(200)
    pending = polls.sent[-1]

    page.js("demo.bus.addChannel('extra')")
    wait_until([page], lambda: "extra" in polls.sent[-1]["params"]["channels"], timeout=1)

    assert polls.sent[-1]["at"] - pending["at"] >= 0.2
    wait_until([page], lambda: len(polls.in_flight) == 1, timeout=1)
    assert pending["request"] in polls.failed, "the pending poll was not aborted"
    srv.send("extra", {"text": "on the new channel", "sent_at": now_ms()})
    [entry] = page.wait_received(1, timeout=2000)
    assert entry["channel"] == "extra"


def test_removing_a_channel_restarts_the_poll_without_it(server, open_demo, polls):
    srv = server()
    page = open_demo(srv)
    page.js("demo.bus.addChannel('extra')")
    wait_until([page], lambda: polls.in_flight and "extra" in polls.sent[-1]["params"]["channels"])

    page.js("demo.bus.deleteChannel('extra')")

    wait_until([page], lambda: "extra" not in polls.sent[-1]["params"]["channels"], timeout=1)
    assert polls.sent[-1]["params"]["channels"] == ["demo"]


def test_a_follower_joining_a_channel_restarts_the_master_poll_at_once(server, open_demo, polls):
    srv = server()
    pages = [open_demo(srv) for _ in range(2)]
    master = wait_for_one_master(pages)
    follower = next(page for page in pages if page is not master)
    wait_until(pages, lambda: len(polls.in_flight) == 1)

    follower.js("demo.bus.addChannel('sales')")

    wait_until(pages, lambda: "sales" in polls.sent[-1]["params"]["channels"], timeout=1)
    assert polls.sent[-1]["page"] is master.page
    srv.send("sales", {"text": "order", "sent_at": now_ms()})
    for page in pages:
        page.wait_received(1)
        assert texts_of(page) == ["order"]


def test_a_closed_tab_takes_its_channels_away(server, open_demo, polls):
    srv = server()
    pages = [open_demo(srv) for _ in range(2)]
    master = wait_for_one_master(pages)
    follower = next(page for page in pages if page is not master)
    follower.js("demo.bus.addChannel('sales')")
    wait_until(pages, lambda: "sales" in polls.sent[-1]["params"]["channels"])

    follower.page.close()

    wait_until([master], lambda: polls.sent[-1]["params"]["channels"] == ["demo"], timeout=2)
    assert master.js("demo.bus.channels") == ["demo"]


def insert_while_down(dsn, texts):
    """Rows written straight into the table (as another process would) while no server runs."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cr:
            store.insert(cr, [("demo", {"text": text}) for text in texts])
    finally:
        conn.close()


def test_tabs_reconnect_after_a_server_restart_and_resume_from_last(server, context, open_demo, polls):
    fast_retry(context)
    srv = server()
    pages = [open_demo(srv) for _ in range(2)]
    master = wait_for_one_master(pages)
    send_many(srv, "demo", ["before"])
    for page in pages:
        page.wait_received(1)
    last = master.last()

    srv.stop()
    insert_while_down(srv.dsn, ["while down 1", "while down 2"])
    pages[0].wait(500)
    srv.start()

    for page in pages:
        page.wait_received(3, timeout=10000)
        assert texts_of(page) == ["before", "while down 1", "while down 2"]
    resumed = [poll for poll in polls.sent if poll["params"]["last"] >= last]
    assert resumed, "no poll resumed from the last id"
    assert all(poll["params"]["last"] >= last for poll in polls.sent[-2:])
