"""The standalone server over real HTTP: Odoo 14's shapes, long-polling, concurrency."""

import json
import threading
import time

import pytest
from bus_fixtures import GOLDEN
from waiting import wait_for

from imbus import sender
from imbus.db import Pools

TRANSCRIPTS = json.loads((GOLDEN / "odoo14_http_transcripts.json").read_text())


def transcript(note):
    return next(case for case in TRANSCRIPTS if case["note"] == note)


def same_shape(actual, expected):
    """Equal but for row ids, which depend on the database."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            (key == "id" and isinstance(actual[key], int)) or same_shape(actual[key], value)
            for key, value in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(same_shape, actual, expected))
    return actual == expected


@pytest.fixture
def srv(server):
    return server()


class Poller(threading.Thread):
    def __init__(self, srv, channels, last=0):
        super().__init__(daemon=True)
        self.srv, self.channels, self.last, self.result = srv, channels, last, None
        self.start()

    def run(self):
        self.result = self.srv.poll(self.channels, self.last)

    def outcome(self, within=10):
        self.join(within)
        assert not self.is_alive(), "the poll is still waiting"
        return self.result


def wait_for_waiters(srv, count, within=10):
    wait_for(lambda: srv.health()["waiters"] >= count, within, "pollers did not start waiting")


@pytest.mark.parametrize("note", [
    "peek on an empty channel",
    "public send to a string channel",
    "last=0 returns the 50 s buffer at once",
    "peek with a buffered message",
    "non-string channel from a client",
    "send to a non-string channel",
])
def test_answers_have_odoo_14_shapes(server, note):
    srv = server()
    if note != "peek on an empty channel":
        srv.rpc("/longpolling/send", transcript("public send to a string channel")["request"]["params"])
    case = transcript(note)
    status, body = srv.post(case["path"], json.dumps(case["request"]).encode())
    assert status == case["status"]
    assert same_shape(body, case["response"]), body


def test_malformed_json_is_a_400_and_the_server_stays_up(srv):
    status, _ = srv.post("/longpolling/poll", b"{not json")
    assert status == 400
    assert srv.poll(["alive"], 0, {"peek": True}) == {"notifications": [], "channels": ["alive"]}


def test_missing_channels_is_a_type_error(srv):
    envelope = srv.rpc("/longpolling/poll", {"last": 0})
    assert envelope["error"]["data"]["name"] == "builtins.TypeError"
    assert "channels" in envelope["error"]["data"]["message"]


def test_a_send_wakes_a_waiting_poll_through_http(srv):
    poller = Poller(srv, ["live"])
    wait_for_waiters(srv, 1)
    started = time.monotonic()
    srv.send("live", {"text": "hi"})
    result = poller.outcome()
    assert [(item["channel"], item["message"]) for item in result] == [("live", {"text": "hi"})]
    assert time.monotonic() - started < 5  # woken: unwoken, it would wait its 50 s


def test_last_moves_forward_without_repeats(srv):
    srv.send("seq", 1)
    first = srv.poll(["seq"], 0)
    srv.send("seq", 2)
    second = srv.poll(["seq"], first[-1]["id"])
    assert [item["message"] for item in first + second] == [1, 2]


def test_an_answer_larger_than_the_socket_buffer_arrives_whole(srv, database):
    """Small answers leave in one plain send; a big one must still go out to the last byte."""
    messages = [f"{n}" + "x" * 2_000_000 for n in range(4)]  # 8 MB: more than a loopback send buffer
    sender.sendmany(database, database.dbname, [("big", message) for message in messages])
    assert [item["message"] for item in srv.poll(["big"], 0)] == messages


def test_a_python_sender_reaches_http_pollers(srv, database):
    poller = Poller(srv, ["from-python"])
    wait_for_waiters(srv, 1)
    sender.sendone(database, database.dbname, "from-python", ["any", {"json": True}])
    assert poller.outcome()[0]["message"] == ["any", {"json": True}]


def test_many_pollers_on_overlapping_channels_each_get_exactly_theirs(srv, database):
    pollers = [Poller(srv, [f"room-{n % 5}", "everyone"]) for n in range(60)]
    wait_for_waiters(srv, 60)
    sender.sendmany(database, database.dbname, [("room-2", "two"), ("everyone", "all")])
    for n, poller in enumerate(pollers):
        got = sorted(item["message"] for item in poller.outcome())
        assert got == (["all", "two"] if n % 5 == 2 else ["all"]), (n, got)


def test_a_send_whose_notify_payload_exceeds_8000_bytes_wakes_every_poller(srv, dsn):
    channels = [f"wide-{n}-" + "x" * 200 for n in range(80)]  # ~17 kB of channel names
    pollers = [Poller(srv, [channel]) for channel in channels[::10]]
    big = Pools(dsn)
    try:
        wait_for_waiters(srv, len(pollers))
        sender.sendmany(big, big.dbname, [(channel, "wide") for channel in channels])
    finally:
        big.close()
    assert all(poller.outcome()[0]["message"] == "wide" for poller in pollers)


def test_sigterm_answers_waiting_polls_and_exits_cleanly(srv):
    poller = Poller(srv, ["bye"])
    wait_for_waiters(srv, 1)
    assert srv.stop() == 0
    assert poller.outcome(5) == []
