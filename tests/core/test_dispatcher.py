"""The dispatcher, in-process with threads (as Odoo's threaded server runs it).

Heartbeats are off (one an hour) unless a test wants them: the catch-up refresh of a
heartbeat would otherwise count as a query, or deliver what a test expects a NOTIFY to.
"""

import contextlib
import logging
import threading
import time

import psycopg2
import psycopg2.extensions
import pytest
from waiting import wait_for

from imbus import listener, notify, ordering, sender, store
from imbus.dispatcher import Dispatcher


@pytest.fixture(autouse=True)
def no_heartbeat(monkeypatch):
    monkeypatch.setattr(listener, "HEARTBEAT_EVERY", 3600.0)


@pytest.fixture
def dispatcher(database):
    bus = Dispatcher(database)
    yield bus
    bus.stop()


class Poll(threading.Thread):
    """A poll running in the background; `result` once it is done."""

    def __init__(self, bus, dbname, channels, last=0, timeout=30):
        super().__init__(daemon=True)
        self.args = (dbname, channels, last)
        self.bus, self.timeout, self.result = bus, timeout, None
        self.start()

    def run(self):
        self.result = self.bus.poll(*self.args, timeout=self.timeout)

    def outcome(self, within=10):
        self.join(within)
        assert not self.is_alive(), "the poll is still waiting"
        return self.result


def messages(notifications):
    return [notification["message"] for notification in notifications]


def last_id(database):
    with database.cursor(database.dbname) as cr:
        cr.execute("SELECT COALESCE(max(id), 0) FROM bus_bus")
        return cr.fetchone()[0]


def announce(dsn, channels):
    """NOTIFY the channels, for rows committed by hand."""
    postgres = psycopg2.extensions.make_dsn(dsn, dbname="postgres")
    with contextlib.closing(psycopg2.connect(postgres)) as conn, conn.cursor() as cr:
        notify.notify(cr, channels)
        conn.commit()


def test_a_send_wakes_a_waiting_poll_without_waiting_for_its_timeout(dispatcher, database):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    poll = Poll(dispatcher, database.dbname, ["news"], last=0, timeout=30)
    wait_for(lambda: dispatcher.waiting == 1)
    started = time.monotonic()
    sender.sendone(database, database.dbname, "news", {"n": 1})
    assert messages(poll.outcome()) == [{"n": 1}]
    assert time.monotonic() - started < 10


def test_poll_returns_buffered_rows_at_once_and_times_out_empty(dispatcher, database):
    sender.sendone(database, database.dbname, "news", "hello")
    assert messages(dispatcher.poll(database.dbname, ["news"], 0)) == ["hello"]
    started = time.monotonic()
    assert dispatcher.poll(database.dbname, ["other"], 0, timeout=0.3) == []
    assert 0.3 <= time.monotonic() - started < 10


def test_peek_answers_without_waiting(dispatcher, database):
    started = time.monotonic()
    result = dispatcher.poll(database.dbname, ["quiet"], 0, {"peek": True})  # the default timeout is 50 s
    assert result == {"notifications": [], "channels": ["quiet"]}
    assert time.monotonic() - started < 10
    assert dispatcher.waiting == 0


def test_only_the_pollers_of_the_notified_channel_wake(dispatcher, database):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    news, sport = Poll(dispatcher, database.dbname, ["news"]), Poll(dispatcher, database.dbname, ["sport"], timeout=3)
    wait_for(lambda: dispatcher.waiting == 2)
    sender.sendone(database, database.dbname, "news", 1)
    assert messages(news.outcome()) == [1]
    assert sport.is_alive()
    assert sport.outcome() == []


class RacyDispatcher(Dispatcher):
    """Commits and announces a notification right after the poll's first read, and lets
    the listener handle it, before the poll starts waiting: the window in which stock Odoo
    (which registers its waiter only after that read) sleeps the full timeout."""

    def __init__(self, database):
        super().__init__(database)
        self.waiter = None
        self.raced = False

    def read(self, dbname, keys, last, fresh=False):
        result = super().read(dbname, keys, last, fresh)
        if not self.raced:
            self.raced = True
            sender.sendone(self.database, dbname, "race", "in between")
            assert self.waiter.event.wait(10), "the listener never woke the registered waiter"
        return result


def test_a_send_between_the_first_read_and_the_wait_wakes_the_poll_at_once(database):
    bus = RacyDispatcher(database)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        started = time.monotonic()
        found = bus.poll(database.dbname, ["race"], 0, timeout=30, watch=lambda waiter: setattr(bus, "waiter", waiter))
        assert bus.raced
        assert messages(found) == ["in between"]
        assert time.monotonic() - started < 10
    finally:
        bus.stop()


def test_a_row_committed_after_a_higher_id_is_delivered_above_it(dispatcher, database, dsn):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    slow = psycopg2.connect(dsn)
    try:
        with slow.cursor() as cr:
            (taken,) = store.insert(cr, [("orders", "slow")])  # id taken, not committed yet
        sender.sendone(database, database.dbname, "orders", "fast")
        first = dispatcher.poll(database.dbname, ["orders"], taken - 1, timeout=5)
        assert messages(first) == ["fast"]
        passed = first[-1]["id"]
        assert passed > taken  # the poller is past the slow transaction's id
        waiting = Poll(dispatcher, database.dbname, ["orders"], passed)
        wait_for(lambda: dispatcher.waiting == 1)
        slow.commit()
        announce(dsn, ["orders"])
        late = waiting.outcome()
        assert messages(late) == ["slow"]
        assert late[0]["id"] > passed  # numbered at its commit, above what was visible before
    finally:
        slow.close()


def test_an_open_transaction_holds_back_nothing_and_its_rollback_leaves_nothing(dispatcher, database, dsn):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    with contextlib.closing(psycopg2.connect(dsn)) as aborted, aborted.cursor() as cr:
        store.insert(cr, [("orders", "never")])
        sender.sendone(database, database.dbname, "orders", "kept")
        kept = dispatcher.poll(database.dbname, ["orders"], 0, timeout=5)
        assert messages(kept) == ["kept"]
        aborted.rollback()
    sender.sendone(database, database.dbname, "orders", "next")
    assert messages(dispatcher.poll(database.dbname, ["orders"], kept[-1]["id"], timeout=5)) == ["next"]


def test_a_committed_send_whose_notify_failed_arrives_with_the_next_heartbeat(database, dsn, monkeypatch):
    monkeypatch.setattr(listener, "HEARTBEAT_EVERY", 0.5)
    bus = Dispatcher(database)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        poll = Poll(bus, database.dbname, ["silent"], timeout=30)
        wait_for(lambda: bus.waiting == 1)
        started = time.monotonic()
        with database.cursor(database.dbname) as cr:
            store.insert(cr, [("silent", "never announced")])  # committed; no NOTIFY follows
        assert messages(poll.outcome(within=10)) == ["never announced"]
        assert time.monotonic() - started < 0.5 + listener.TICK + 5  # a heartbeat period, not the poll's 30 s
    finally:
        bus.stop()


def test_one_query_serves_every_poller_woken_by_a_send(database):
    counting = CountingDatabase(database)
    bus = Dispatcher(counting)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        sender.sendone(database, database.dbname, "setup", "done")
        last = last_id(database)
        bus.poll(database.dbname, ["crowd"], last, {"peek": True})  # load the feed
        polls = [Poll(bus, database.dbname, ["crowd", f"own-{n}"], last) for n in range(50)]
        wait_for(lambda: bus.waiting == 50)
        counting.reads = 0
        sender.sendone(database, database.dbname, "crowd", "to all")  # through the pools, uncounted
        assert all(messages(poll.outcome()) == ["to all"] for poll in polls)
        assert counting.reads == 1  # the one refresh; the 50 answers and re-reads came from memory
    finally:
        bus.stop()


class CountingDatabase:
    """The real pools, counting the cursors opened and the reads of bus_bus run through them."""

    def __init__(self, database):
        self.database, self.dbname = database, database.dbname
        self.opened = self.reads = 0

    @contextlib.contextmanager
    def cursor(self, dbname):
        self.opened += 1
        with self.database.cursor(dbname) as cr:
            yield CountingCursor(cr, self)

    def listen_connection(self):
        return self.database.listen_connection()


class CountingCursor:
    def __init__(self, cr, counter):
        self.cr, self.counter = cr, counter

    def execute(self, query, params=None):
        if "FROM bus_bus" in query and not query.lstrip().startswith(("INSERT", "DELETE")):
            self.counter.reads += 1
        return self.cr.execute(query, params)

    def __getattr__(self, name):
        return getattr(self.cr, name)


def test_a_killed_listener_reconnects_and_nothing_is_lost(dispatcher, database, pg):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    poll = Poll(dispatcher, database.dbname, ["alerts"], 0, timeout=30)
    wait_for(lambda: dispatcher.waiting == 1)
    with contextlib.closing(pg.connect()) as conn, conn.cursor() as cr:
        cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN imbus%'")
        assert cr.fetchall()
    sender.sendone(database, database.dbname, "alerts", "during the outage")
    started = time.monotonic()
    assert messages(poll.outcome(20)) == ["during the outage"]
    assert time.monotonic() - started < 20  # by the reconnection, not the poll's 30 s timeout
    wait_for(lambda: dispatcher.reconnects >= 1)  # the NOTIFY may reach the listener before its kill does


def test_stop_answers_waiting_polls(database):
    bus = Dispatcher(database)
    poll = Poll(bus, database.dbname, ["x"], 0, timeout=30)
    wait_for(lambda: bus.waiting == 1)
    bus.stop()
    assert poll.outcome() == []


def test_peek_sees_a_row_committed_just_before_without_a_listener(database):
    bus = Dispatcher(database)  # never started: nothing would mark the feed stale
    assert bus.poll(database.dbname, ["peeked"], 0, {"peek": True})["notifications"] == []
    sender.sendone(database, database.dbname, "peeked", "now")
    assert messages(bus.poll(database.dbname, ["peeked"], 0, {"peek": True})["notifications"]) == ["now"]


def test_new_pages_polling_with_last_zero_are_answered_from_memory(database):
    sender.sendmany(database, database.dbname, [("lobby", "earlier"), ("elsewhere", "not for us")])
    counting = CountingDatabase(database)
    bus = Dispatcher(counting)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        answers = [bus.poll(database.dbname, ["lobby"], 0, timeout=1) for _ in range(20)]
        assert all(messages(answer) == ["earlier"] for answer in answers)
        assert counting.opened == 1  # the feed's first load; then memory
    finally:
        bus.stop()


def test_a_database_without_the_commit_order_trigger_is_named_in_one_warning(database, caplog):
    with database.cursor(database.dbname) as cr:
        cr.execute(f"DROP TRIGGER {ordering.TRIGGER} ON bus_bus")
    bus = Dispatcher(database)
    with caplog.at_level(logging.WARNING, logger="imbus"):
        bus.poll(database.dbname, ["x"], 0, {"peek": True})
        bus.poll(database.dbname, ["x"], 0, {"peek": True})
    warnings = [record.getMessage() for record in caplog.records if "commit-order trigger" in record.getMessage()]
    assert len(warnings) == 1
    assert database.dbname in warnings[0] and "-u bus" in warnings[0] and "imbus serve" in warnings[0]
