"""The server keeps Python's cyclic collector rare (with 10,000 waiting polls a full
collection stalls the process for about a second), so a request must leave no reference
cycle behind: refcounting alone has to free everything it made."""

import contextlib
import gc
import json
from collections import Counter

import pytest
from werkzeug.test import EnvironBuilder

from imbus import sender
from imbus.app import BusApp
from imbus.dispatcher import Dispatcher


@pytest.fixture
def app(database):
    dispatcher = Dispatcher(database, timeout=0.05)  # a poll with nothing new answers quickly
    yield BusApp(dispatcher, database, database.dbname)
    dispatcher.stop()


def call(app, path, params):
    """The app's answer to one JSON-RPC POST, straight through WSGI (no test client: it
    makes cycles of its own)."""
    environ = EnvironBuilder(path=path, method="POST", json={"jsonrpc": "2.0", "method": "call", "params": params,
                                                               "id": 1}).get_environ()
    status = []
    body = b"".join(app(environ, lambda line, headers: status.append(line)))
    return status[0], json.loads(body)


@contextlib.contextmanager
def saved_garbage():
    """Collect first, then keep whatever the block leaves for the collector in `found`."""
    found = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_polls_leave_nothing_for_the_cyclic_collector(app, database):
    sender.sendone(database, database.dbname, "news", "hello")
    first = call(app, "/longpolling/poll", {"channels": ["news"], "last": 0})  # warms the feed and listener up
    assert first[0] == "200 OK" and [row["message"] for row in first[1]["result"]] == ["hello"]
    with saved_garbage() as garbage:
        for _ in range(20):
            assert call(app, "/longpolling/poll", {"channels": ["news"], "last": 0})[1]["result"]
            assert call(app, "/longpolling/poll", {"channels": ["news"], "last": 10**9})[1]["result"] == []
            assert call(app, "/longpolling/poll", {"channels": ["news"], "last": 0, "options": {"peek": True}})
            assert "error" in call(app, "/longpolling/poll", {"channels": "news"})[1]
    assert not garbage, Counter(type(thing).__qualname__ for thing in garbage)
