"""What the dispatcher keeps in memory is bounded (by age, rows and bytes), and a poll
whose rows left memory reads them from the table: the bound costs a query, never a row."""

import pytest

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


def test_memory_keeps_at_most_max_bytes_and_older_rows_come_from_the_table(dispatcher, database, monkeypatch):
    monkeypatch.setattr(feed, "MAX_BYTES", 10_000)
    dispatcher.poll(database.dbname, ["big"], 0, {"peek": True})  # the feed is loaded, empty
    sent = [f"{n:02}" + "x" * 998 for n in range(30)]
    ids = [sender.sendone(database, database.dbname, "big", message) for message in sent]

    assert messages(dispatcher.poll(database.dbname, ["big"], 0, {"peek": True})["notifications"]) == sent
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
