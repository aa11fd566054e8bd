"""What the dispatcher keeps in memory is bounded (by age, rows and bytes), every read is
bounded, and a poll whose rows left memory reads them from the table: a bound costs a
query, never a row. Ages count on the database's clock, whatever the host's says."""

import datetime

import pytest

from imbus import dispatcher as dispatcher_module
from imbus import feed, sender
from imbus.channels import json_dump
from imbus.dispatcher import Dispatcher


@pytest.fixture
def dispatcher(database):
    bus = Dispatcher(database)
    yield bus
    bus.stop()


def messages(notifications):
    return [notification["message"] for notification in notifications]


def peek(bus, dbname, channel, last=0):
    return bus.poll(dbname, [channel], last, {"peek": True})["notifications"]


def test_memory_keeps_at_most_max_bytes_and_older_rows_come_from_the_table(dispatcher, database, monkeypatch):
    monkeypatch.setattr(feed, "MAX_BYTES", 10_000)
    peek(dispatcher, database.dbname, "big")  # the feed is loaded, empty
    sent = [f"{n:02}" + "x" * 998 for n in range(30)]
    for message in sent:
        sender.sendone(database, database.dbname, "big", message)

    received = peek(dispatcher, database.dbname, "big")
    assert messages(received) == sent
    ids = [item["id"] for item in received]
    memory = dispatcher.feed(database.dbname)
    assert memory.size <= 10_000
    assert ids[0] < memory.floor < ids[-1]  # the oldest rows left memory
    assert memory.read([json_dump("big")], ids[0]) is None  # memory cannot answer that `last` ...
    assert messages(dispatcher.poll(database.dbname, ["big"], ids[0])) == sent[1:]  # ... the table does
    assert messages(dispatcher.poll(database.dbname, ["big"], ids[-2])) == sent[-1:]


def test_rows_already_in_the_table_count_against_the_bound_at_start_up(dispatcher, database, monkeypatch):
    monkeypatch.setattr(feed, "MAX_BYTES", 5_000)
    sent = [f"{n:02}" + "y" * 998 for n in range(12)]
    sender.sendmany(database, database.dbname, [("early", message) for message in sent])
    assert messages(dispatcher.poll(database.dbname, ["early"], 0)) == sent
    assert dispatcher.feed(database.dbname).size <= 5_000


def test_a_feed_that_fell_behind_catches_up_chunk_by_chunk(dispatcher, database, monkeypatch):
    monkeypatch.setattr(feed, "CHUNK", 5)
    start = peek(dispatcher, database.dbname, "marker")
    sender.sendone(database, database.dbname, "marker", "before")
    (marker,) = peek(dispatcher, database.dbname, "marker", max([item["id"] for item in start], default=0))
    sender.sendmany(database, database.dbname, [("backlog", n) for n in range(23)])
    queries = []
    since = feed.store.since

    def counted(cr, after, count):  # the real query, counted
        queries.append(count)
        return since(cr, after, count)

    monkeypatch.setattr(feed.store, "since", counted)
    assert messages(peek(dispatcher, database.dbname, "backlog", marker["id"])) == list(range(23))
    assert queries == [5] * 5  # 23 rows: four full chunks and a short one


def test_a_feed_starts_from_the_last_rows_only_and_older_ones_come_from_the_table(database, monkeypatch):
    monkeypatch.setattr(feed, "SEED", 10)
    monkeypatch.setattr(dispatcher_module, "COLD_LIMIT", 4)
    sender.sendmany(database, database.dbname, [("seeded", n) for n in range(25)])
    bus = Dispatcher(database)
    try:
        assert messages(peek(bus, database.dbname, "seeded")) == list(range(4))  # last=0: too old for memory
        memory = bus.feed(database.dbname)
        assert len(memory.log) == 10
        received, last = [], 0
        for _ in range(10):  # a client re-polling from the highest id it got, as the JS client does
            answer = peek(bus, database.dbname, "seeded", last)
            if not answer:
                break
            received += messages(answer)
            last = answer[-1]["id"]
        assert received == list(range(25))
    finally:
        bus.stop()


@pytest.mark.parametrize("skew", [100, -100])
def test_ages_count_on_the_databases_clock_even_when_the_hosts_is_off(database, skew):
    sender.sendmany(database, database.dbname, [("skewed", n) for n in range(3)])
    skewed = feed.Feed(database.dbname, lambda: database.cursor(database.dbname),
                       clock=lambda: feed.utcnow() + datetime.timedelta(seconds=skew))
    skewed.refresh()
    assert len(skewed.log) == 3  # a host 100 s ahead would have evicted everything on its own clock
    found = skewed.read([json_dump("skewed")], 0)  # last = 0: the last 50 s, on the database's clock
    assert [row.message for row in found] == ["0", "1", "2"]
    sender.sendone(database, database.dbname, "skewed", 3)
    skewed.stale = True
    skewed.refresh()
    assert [row.message for row in skewed.read([json_dump("skewed")], 0)] == ["0", "1", "2", "3"]
