"""The dispatcher, in-process with threads (as Odoo's threaded server runs it)."""

import contextlib
import threading
import time

import psycopg2
import pytest

from imbus import notify, sender, store
from imbus.dispatcher import Dispatcher


@pytest.fixture
def dispatcher(database):
    bus = Dispatcher(database)
    yield bus
    bus.stop()


class Poll(threading.Thread):
    """A poll running in the background; `result` once it is done."""

    def __init__(self, bus, dbname, channels, last=0, timeout=10):
        super().__init__(daemon=True)
        self.args = (dbname, channels, last)
        self.bus, self.timeout, self.result = bus, timeout, None
        self.start()

    def run(self):
        self.result = self.bus.poll(*self.args, timeout=self.timeout)

    def outcome(self, within=5):
        self.join(within)
        assert not self.is_alive(), "the poll is still waiting"
        return self.result


def wait_for(predicate, within=5):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def messages(notifications):
    return [notification["message"] for notification in notifications]


def test_a_send_wakes_a_waiting_poll(dispatcher, database):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    poll = Poll(dispatcher, database.dbname, ["news"], last=0)
    wait_for(lambda: dispatcher.waiting == 1)
    started = time.monotonic()
    sender.sendone(database, database.dbname, "news", {"n": 1})
    assert messages(poll.outcome()) == [{"n": 1}]
    assert time.monotonic() - started < 0.5


def test_poll_returns_buffered_rows_at_once_and_times_out_empty(dispatcher, database):
    sender.sendone(database, database.dbname, "news", "hello")
    assert messages(dispatcher.poll(database.dbname, ["news"], 0)) == ["hello"]
    started = time.monotonic()
    assert dispatcher.poll(database.dbname, ["other"], 0, timeout=0.3) == []
    assert 0.3 <= time.monotonic() - started < 2


def test_peek_answers_without_waiting(dispatcher, database):
    result = dispatcher.poll(database.dbname, ["quiet"], 0, {"peek": True})
    assert result == {"notifications": [], "channels": ["quiet"]}


def test_only_the_pollers_of_the_notified_channel_wake(dispatcher, database):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    news, sport = Poll(dispatcher, database.dbname, ["news"], 0, 3), Poll(dispatcher, database.dbname, ["sport"], 0, 3)
    wait_for(lambda: dispatcher.waiting == 2)
    sender.sendone(database, database.dbname, "news", 1)
    assert messages(news.outcome()) == [1]
    assert sport.is_alive()
    assert sport.outcome(5) == []


class RacyDispatcher(Dispatcher):
    """Commits and announces a notification right after the poll's first read, before it
    starts waiting: the window in which stock Odoo sleeps 50 s."""

    def __init__(self, database):
        super().__init__(database)
        self.raced = False

    def read(self, dbname, keys, last):
        result = super().read(dbname, keys, last)
        if not self.raced:
            self.raced = True
            sender.sendone(self.database, dbname, "race", "in between")
            time.sleep(0.2)  # let the listener see the NOTIFY before we wait
        return result


def test_a_send_between_the_first_read_and_the_wait_wakes_the_poll_at_once(database):
    bus = RacyDispatcher(database)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        started = time.monotonic()
        assert messages(bus.poll(database.dbname, ["race"], 0, timeout=20)) == ["in between"]
        assert time.monotonic() - started < 2
    finally:
        bus.stop()


def test_a_lower_id_committed_after_a_higher_one_is_still_delivered(dispatcher, database, dsn):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    slow = psycopg2.connect(dsn)
    try:
        with slow.cursor() as cr:
            (low,) = store.insert(cr, [("orders", "slow")])  # id taken, not committed yet
        high = sender.sendone(database, database.dbname, "orders", "fast")
        assert high > low
        first = dispatcher.poll(database.dbname, ["orders"], low - 1, timeout=5)
        assert messages(first) == ["fast"]
        waiting = Poll(dispatcher, database.dbname, ["orders"], first[-1]["id"], timeout=10)
        wait_for(lambda: dispatcher.waiting == 1)
        slow.commit()
        with contextlib.closing(psycopg2.connect(dsn.replace(database.dbname, "postgres"))) as conn:
            with conn.cursor() as cr:
                notify.notify(cr, ["orders"])
            conn.commit()
        late = waiting.outcome(5)
        assert messages(late) == ["slow"]
        assert late[0]["id"] > high  # re-issued above what the poller had passed
    finally:
        slow.close()


def test_a_rolled_back_id_is_forgotten(dispatcher, database, dsn):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    with contextlib.closing(psycopg2.connect(dsn)) as aborted, aborted.cursor() as cr:
        store.insert(cr, [("orders", "never")])
        sender.sendone(database, database.dbname, "orders", "kept")
        assert messages(dispatcher.poll(database.dbname, ["orders"], 0, timeout=1)) == ["kept"]
        feed = dispatcher.feed(database.dbname)
        assert feed.pending_ids()  # in flight for now
        aborted.rollback()
    wait_for(lambda: not feed.pending_ids(), within=5)


def test_one_query_serves_every_poller_woken_by_a_send(database, dsn):
    counting = CountingDatabase(database)
    bus = Dispatcher(counting)
    bus.start()
    try:
        wait_for(lambda: bus.listening)
        last = sender.sendone(database, database.dbname, "setup", "done")
        bus.poll(database.dbname, ["crowd"], last, {"peek": True})  # load the feed
        polls = [Poll(bus, database.dbname, ["crowd", f"own-{n}"], last) for n in range(50)]
        wait_for(lambda: bus.waiting == 50)
        counting.opened = 0
        sender.sendone(database, database.dbname, "crowd", "to all")
        assert all(messages(poll.outcome()) == ["to all"] for poll in polls)
        assert counting.opened <= 3  # the send's insert and notify, the one refresh
    finally:
        bus.stop()


class CountingDatabase:
    """The real pools, counting the cursors opened through them."""

    def __init__(self, database):
        self.database, self.opened, self.dbname = database, 0, database.dbname

    def cursor(self, dbname):
        self.opened += 1
        return self.database.cursor(dbname)

    def listen_connection(self):
        return self.database.listen_connection()


def test_a_killed_listener_reconnects_and_nothing_is_lost(dispatcher, database, pg):
    dispatcher.start()
    wait_for(lambda: dispatcher.listening)
    poll = Poll(dispatcher, database.dbname, ["alerts"], 0, timeout=15)
    wait_for(lambda: dispatcher.waiting == 1)
    with contextlib.closing(pg.connect()) as conn, conn.cursor() as cr:
        cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN imbus%'"
                   " OR (query = 'SELECT 1' AND datname = 'postgres' AND pid <> pg_backend_pid())")
        assert cr.fetchall()
    sender.sendone(database, database.dbname, "alerts", "during the outage")
    started = time.monotonic()
    assert messages(poll.outcome(10)) == ["during the outage"]
    assert time.monotonic() - started < 3
    wait_for(lambda: dispatcher.reconnects >= 1)  # the NOTIFY may reach the listener before its kill does


def test_stop_answers_waiting_polls(database):
    bus = Dispatcher(database)
    poll = Poll(bus, database.dbname, ["x"], 0, timeout=30)
    wait_for(lambda: bus.waiting == 1)
    bus.stop()
    assert poll.outcome(5) == []


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
