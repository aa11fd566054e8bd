"""Clients that vanish mid-poll, and a crowd of waiting polls against a small pool."""

import http.client
import json
import os
import time
from urllib.parse import urlsplit

import pytest
from faults_support import RawPoll, call, health, server_backends, stored
from waiting import wait_for


def open_sockets(pid: int) -> int:
    """Sockets the server process holds: one per client connection, plus a few of its own."""
    fds = os.listdir(f"/proc/{pid}/fd")
    return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in fds if _exists(pid, fd))


def _exists(pid: int, fd: str) -> bool:
    return os.path.exists(f"/proc/{pid}/fd/{fd}")


def test_clients_that_vanish_mid_poll_leave_no_waiter_socket_or_connection(server, dsn):
    srv = server()
    srv.poll(["warm-up"], 0, {"peek": True})
    sockets_before, backends_before = open_sockets(srv.pid), len(server_backends(dsn))
    polls = [RawPoll(srv.url, ["gone", f"own-{n}"]) for n in range(40)]
    wait_for(lambda: health(srv.url)["waiters"] == 40)
    assert open_sockets(srv.pid) >= sockets_before + 40 - 2  # give or take a health check's own connection
    for n, poll in enumerate(polls):
        poll.reset() if n % 2 else poll.hang_up()  # half crash (RST), half close their tab (FIN)
    wait_for(lambda: health(srv.url)["waiters"] == 0, within=10,
             message="waiters of vanished clients are kept until their 50 s run out")
    wait_for(lambda: open_sockets(srv.pid) <= sockets_before + 2, within=10, message="client sockets leaked")
    assert len(server_backends(dsn)) <= max(backends_before, 8)
    srv.send("gone", "nobody listens")  # waking nobody breaks nothing
    stayer = RawPoll(srv.url, ["stayer"])
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    srv.send("stayer", "still served")
    assert stayer.answer()["result"][0]["message"] == "still served"
    assert "Traceback" not in srv.logs(), srv.logs()


def test_a_vanished_client_loses_nothing_it_can_poll_again(server, dsn):
    srv = server()
    poll = RawPoll(srv.url, ["resume"])
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    poll.reset()
    wait_for(lambda: health(srv.url)["waiters"] == 0, within=10)
    srv.send("resume", "while away")
    assert [item["message"] for item in srv.poll(["resume"], 0)] == ["while away"]
    assert [message for _, message in stored(dsn, "resume")] == ["while away"]


@pytest.mark.parametrize("fresh", [False, True], ids=["resuming", "fresh-clients"])
def test_a_thousand_waiting_polls_hold_no_database_connection(server, dsn, fresh):
    """Resuming clients poll from their `last`; fresh ones from 0, which a new process
    cannot answer from memory (it holds no 50 s of history yet): a thousand queries."""
    srv = server()
    srv.send("crowd-setup", "ready")
    last = 0 if fresh else stored(dsn, "crowd-setup")[-1][0]
    polls = [RawPoll(srv.url, [f"crowd-{n % 10}"], last) for n in range(1000)]
    wait_for(lambda: health(srv.url)["waiters"] == 1000, within=30)
    # Registered polls may still be running their first read (fresh clients: from the table).
    # Once those are done, every poll waits in memory and the pool's connections sit idle.
    wait_for(lambda: all(state == "idle" for state, _ in server_backends(dsn)), within=15,
             message=f"waiting polls keep database connections busy: {server_backends(dsn)}")
    assert len(server_backends(dsn)) <= 8  # the pool's size, whatever the number of polls
    started = time.monotonic()
    for n in range(20):  # sends, peeks and health checks all keep working meanwhile
        srv.send(f"quiet-{n}", n)
        assert srv.poll([f"quiet-{n}"], last, {"peek": True})["notifications"][0]["message"] == n
    assert time.monotonic() - started < 5
    srv.send("crowd-3", "to a hundred")
    woken = [poll for n, poll in enumerate(polls) if n % 10 == 3]
    assert all(poll.answer()["result"][0]["message"] == "to a hundred" for poll in woken)
    assert health(srv.url)["waiters"] == 900
    for poll in polls:
        poll.reset()
    wait_for(lambda: health(srv.url)["waiters"] == 0, within=10)


def test_a_keep_alive_connection_polls_again_after_a_waiting_poll_is_answered(server):
    """Browsers reuse their connection: the next poll on it must work once the first,
    which waited (and had its hang-up watched), is answered."""
    srv = server()
    parts = urlsplit(srv.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    last = 0
    for n in range(5):
        body = call({"channels": ["kept"], "last": last, "options": {}})
        conn.request("POST", "/longpolling/poll", body=body, headers={"Content-Type": "application/json"})
        wait_for(lambda: health(srv.url)["waiters"] == 1)
        srv.send("kept", n)
        result = json.loads(conn.getresponse().read())["result"]
        assert [item["message"] for item in result] == [n]
        last = result[-1]["id"]
    conn.close()
    assert "Traceback" not in srv.logs(), srv.logs()
