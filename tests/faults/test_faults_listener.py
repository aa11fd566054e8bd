"""The listener's connection dies, or goes deaf, while polls wait: nothing committed is lost.

A long outage is made on purpose: the listener logs in as a role of its own, which is
refused logins (NOLOGIN) while its connection is killed, so every reconnection attempt
fails until the role may log in again. A deaf listener sits behind a TCP proxy that
freezes its connection without closing it.
"""

import functools
import time
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from faults_support import Follower, FreezingProxy, RawPoll, health, query, stop_followers
from waiting import wait_for


@pytest.fixture
def listener_role(pg):
    """A login role for the listener only, so the test can lock it out."""
    role, password = f"imbus_listener_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        query(pg.dsn, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    except psycopg2.errors.InsufficientPrivilege:
        pytest.skip("the test cluster's user may not create roles (BUS_DSN without CREATEROLE)")
    try:
        yield role, psycopg2.extensions.make_dsn(pg.dsn, dbname="postgres", user=role, password=password)
    finally:
        query(pg.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        query(pg.dsn, f'DROP ROLE IF EXISTS "{role}"')


def delivered(followers, expected):
    return all(follower.messages() == expected for follower in followers)


def test_polls_get_what_was_committed_before_during_and_after_a_listener_outage(server, pg, listener_role):
    role, listen_dsn = listener_role
    srv = server("--listen-dsn", listen_dsn)
    followers = [Follower(srv.url, "alerts") for _ in range(3)]
    wait_for(lambda: health(srv.url)["waiters"] == 3)
    srv.send("alerts", "before")
    wait_for(lambda: delivered(followers, ["before"]), within=10)

    query(pg.dsn, f'ALTER ROLE "{role}" NOLOGIN')
    assert query(pg.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
    wait_for(lambda: not health(srv.url)["listening"], within=5)
    srv.send("alerts", "during 1")  # sends need no listener: they are stored and announced
    srv.send("alerts", "during 2")
    attempts = health(srv.url)["reconnects"]
    wait_for(lambda: health(srv.url)["reconnects"] >= attempts + 3, within=15,
             message="the listener stopped trying to reconnect")
    assert health(srv.url)["listening"] is False  # three attempts failed meanwhile

    query(pg.dsn, f'ALTER ROLE "{role}" LOGIN')
    recovered = time.monotonic()
    wait_for(lambda: delivered(followers, ["before", "during 1", "during 2"]), within=15,
             message="notifications committed during the outage were not delivered after it")
    assert time.monotonic() - recovered < 10  # the backoff stops at 1 s (stock Odoo sleeps 50 s)
    assert health(srv.url)["listening"] is True
    srv.send("alerts", "after")
    wait_for(lambda: delivered(followers, ["before", "during 1", "during 2", "after"]), within=10)
    assert health(srv.url)["reconnects"] >= 1
    stop_followers(followers, srv.send)
    for follower in followers:
        assert len(set(follower.ids())) == len(follower.ids()) == 4


def listening_again(url, attempts):
    """The listener listens, after more reconnection attempts than `attempts`."""
    state = health(url)
    return state["listening"] and state["reconnects"] > attempts


def test_listener_killed_over_and_over_while_senders_send(server, pg, database):
    """Ten kills in a row, a send right after each (while the listener is down): every
    send reaches every poller once."""
    srv = server()
    followers = [Follower(srv.url, "storm") for _ in range(3)]
    wait_for(lambda: health(srv.url)["waiters"] == 3)
    expected = []
    for n in range(10):
        attempts = health(srv.url)["reconnects"]
        assert query(pg.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'postgres'"
                             " AND query ILIKE 'LISTEN imbus%' AND pid <> pg_backend_pid()"), "no listener to kill"
        srv.send("storm", n)
        expected.append(n)
        wait_for(functools.partial(listening_again, srv.url, attempts), within=15,
                 message="the listener did not come back after a kill")
    wait_for(lambda: delivered(followers, expected), within=15,
             message="some notifications were lost or repeated across listener kills")
    stop_followers(followers, srv.send)
    assert health(srv.url)["reconnects"] >= 10


@pytest.fixture
def frozen_path(pg):
    """A listener DSN through a FreezingProxy to the test cluster."""
    parts = psycopg2.extensions.parse_dsn(pg.dsn)
    if not parts.get("host", "").startswith("127.") and parts.get("host") != "localhost":
        pytest.skip("the proxy relays TCP only; the cluster is not on 127.0.0.1")
    proxy = FreezingProxy(parts["host"], int(parts.get("port", 5432)))
    try:
        yield proxy, psycopg2.extensions.make_dsn(pg.dsn, dbname="postgres", host="127.0.0.1", port=proxy.port)
    finally:
        proxy.close()


def test_a_listener_that_silently_stops_hearing_is_replaced(server, frozen_path):
    """No error, no reset: the listener's connection just goes quiet for good. The
    dispatcher must notice by itself (its own heartbeat does not come back) and listen
    anew, then deliver what was sent meanwhile."""
    proxy, listen_dsn = frozen_path
    srv = server("--listen-dsn", listen_dsn)
    followers = [Follower(srv.url, "quiet") for _ in range(2)]
    wait_for(lambda: health(srv.url)["waiters"] == 2)
    assert proxy.freeze() == 1
    srv.send("quiet", "unheard")
    wait_for(lambda: health(srv.url)["reconnects"] >= 1, within=25,
             message="a frozen listener connection was never replaced")
    wait_for(lambda: all(follower.messages() == ["unheard"] for follower in followers), within=10,
             message="what was sent while the listener was deaf was not delivered")
    srv.send("quiet", "heard")  # by the new listener, at once
    wait_for(lambda: all(follower.messages() == ["unheard", "heard"] for follower in followers), within=10)
    stop_followers(followers, srv.send)


def test_the_listener_comes_back_when_the_process_holds_over_1024_files(server, pg, listener_role):
    """With more than FD_SETSIZE (1024) files open, a new listener connection gets a file
    number that select() cannot take: listening must not depend on select()."""
    role, listen_dsn = listener_role
    srv = server("--listen-dsn", listen_dsn)
    crowd = [RawPoll(srv.url, [f"crowd-{n}"]) for n in range(1100)]
    wait_for(lambda: health(srv.url)["waiters"] == 1100, within=30)
    query(pg.dsn, f'ALTER ROLE "{role}" NOLOGIN')
    assert query(pg.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
    wait_for(lambda: not health(srv.url)["listening"], within=5)
    crowd += [RawPoll(srv.url, [f"late-{n}"]) for n in range(20)]  # they take the low file numbers freed
    wait_for(lambda: health(srv.url)["waiters"] == 1120, within=10)
    query(pg.dsn, f'ALTER ROLE "{role}" LOGIN')
    wait_for(lambda: health(srv.url)["listening"], within=5, message="the listener did not come back")
    srv.send("crowd-7", "heard")
    assert crowd[7].answer(timeout=5)["result"][0]["message"] == "heard"
    for poll in crowd:
        poll.reset()
