"""imbus.notifier: NOTIFYs through one kept connection, replaced when it broke."""

import contextlib
import json
import select
import time

import psycopg2
import pytest
from bus_fixtures import Cluster

from imbus.notifier import Notifier
from imbus.notify import CHANNEL


def heard(listener, count: int, within: float = 10.0) -> list:
    """The first `count` payloads `listener` receives, waiting up to `within` s for them
    (fewer if they do not come), then whatever else already arrived."""
    deadline = time.monotonic() + within
    listener.poll()
    while len(listener.notifies) < count and time.monotonic() < deadline:
        select.select([listener], [], [], max(deadline - time.monotonic(), 0))
        listener.poll()
    payloads = [json.loads(notice.payload) for notice in listener.notifies]
    listener.notifies.clear()
    return payloads


@contextlib.contextmanager
def listening(pg: Cluster):
    listener = pg.connect()
    with listener.cursor() as cr:
        cr.execute(f"LISTEN {CHANNEL}")
    try:
        yield listener
    finally:
        listener.close()


def test_notifies_reach_listeners_through_one_connection(pg: Cluster):
    connections = []

    def connect():
        connections.append(pg.connect())
        return connections[-1]

    notifier = Notifier(connect)
    with listening(pg) as listener:
        notifier.notify(["general", ("db", "res.partner", 3)])
        notifier.notify(["second"])
        assert heard(listener, 2) == [["general", ["db", "res.partner", 3]], ["second"]]
    assert len(connections) == 1 and not connections[0].closed
    notifier.close()
    assert connections[0].closed


def test_a_connection_the_server_dropped_is_replaced_and_the_notify_sent(pg: Cluster):
    notifier = Notifier(pg.connect)
    with listening(pg) as listener, contextlib.closing(pg.connect()) as admin:
        notifier.notify(["first"])
        assert heard(listener, 1) == [["first"]]
        backend = notifier.connection.get_backend_pid()
        with admin.cursor() as cr:
            cr.execute("SELECT pg_terminate_backend(%s)", [backend])
        notifier.notify(["after"])
        assert heard(listener, 1) == [["after"]]
        assert notifier.connection.get_backend_pid() != backend
    notifier.close()


def test_a_server_out_of_reach_raises():
    def unreachable():
        raise psycopg2.OperationalError("connection refused")

    notifier = Notifier(unreachable)
    with pytest.raises(psycopg2.OperationalError):
        notifier.notify(["lost"])
    assert notifier.connection is None
