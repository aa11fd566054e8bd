"""The garbage collector runs (every 0.2 s here) while polls wait: it deletes rows older
than 100 s, and nothing a waiting or resuming poll still needs."""

import contextlib
import json
import time

import psycopg2
from faults_support import Follower, connect, health, query, stop_followers, stored
from waiting import wait_for

from imbus import notify, store

GC_FAST = ("--gc-period", "0.2")


def backdate(dsn, channel, messages, seconds):
    """Store rows, then date them `seconds` ago (after their commit, which dates them)."""
    query(dsn, "INSERT INTO bus_bus (channel, message) SELECT %s, m FROM unnest(%s) AS m",
          [json.dumps(channel), [json.dumps(message) for message in messages]])
    query(dsn, "UPDATE bus_bus SET create_date = create_date - make_interval(secs => %s) WHERE channel = %s",
          [seconds, json.dumps(channel)])


def test_gc_deletes_only_old_rows_while_polls_wait_and_sends_go_on(server, dsn):
    backdate(dsn, "live", ["ancient-1", "ancient-2"], 150)
    oldest_kept = stored(dsn, "live")[-1][0]
    srv = server(*GC_FAST)
    srv.send("live", "recent")
    followers = [Follower(srv.url, "live", last=oldest_kept) for _ in range(3)]
    wait_for(lambda: all(follower.messages() == ["recent"] for follower in followers))
    wait_for(lambda: health(srv.url)["waiters"] == 3)
    wait_for(lambda: [message for _, message in stored(dsn, "live")] == ["recent"], within=10,
             message="the garbage collector did not run")
    expected = ["recent"]
    for n in range(20):  # sends interleaved with a dozen GC runs
        srv.send("live", n)
        expected.append(n)
        time.sleep(0.05)
    wait_for(lambda: all(follower.messages() == expected for follower in followers), within=10)
    stop_followers(followers, srv.send)
    assert [item["message"] for item in srv.poll(["live"], 0)] == expected
    assert [item["message"] for item in srv.poll(["live"], oldest_kept)] == expected


def test_a_row_committed_late_by_a_long_transaction_survives_the_gc(server, dsn):
    """A transaction open for 150 s stamps its rows with its start time: they are already
    'old' when they become visible, and the GC must not take them from waiting polls."""
    srv = server(*GC_FAST)
    srv.send("slow", "first")
    followers = [Follower(srv.url, "slow") for _ in range(2)]
    wait_for(lambda: all(follower.messages() == ["first"] for follower in followers))
    with contextlib.closing(psycopg2.connect(dsn)) as long_txn:
        with long_txn.cursor() as cr:
            (late_id,) = store.insert(cr, [("slow", "from a long transaction")])
            cr.execute("UPDATE bus_bus SET create_date = create_date - interval '150 seconds' WHERE id = %s",
                       [late_id])
        srv.send("slow", "fast")
        wait_for(lambda: all(follower.messages() == ["first", "fast"] for follower in followers))
        long_txn.commit()
    with contextlib.closing(connect(dsn, "postgres")) as conn, conn.cursor() as cr:
        notify.notify(cr, ["slow"])
    wait_for(lambda: all(follower.messages() == ["first", "fast", "from a long transaction"]
                         for follower in followers), within=5, message="the late row was lost")
    stop_followers(followers, srv.send)


def test_a_late_row_committed_just_before_a_gc_run_survives_it(server, dsn):
    """The same row, but a GC run falls between its commit and the moment the dispatcher
    reads it (a tick, or a NOTIFY sent a little later): the GC sees an 'old' row and deletes it."""
    srv = server(*GC_FAST)
    srv.send("slow", "first")
    follower = Follower(srv.url, "slow")
    wait_for(lambda: follower.messages() == ["first"])
    with contextlib.closing(psycopg2.connect(dsn)) as long_txn:
        with long_txn.cursor() as cr:
            (late_id,) = store.insert(cr, [("slow", "from a long transaction")])
            cr.execute("UPDATE bus_bus SET create_date = create_date - interval '150 seconds' WHERE id = %s",
                       [late_id])
        srv.send("slow", "fast")
        wait_for(lambda: follower.messages() == ["first", "fast"])
        long_txn.commit()
    backdate(dsn, "gc-probe", ["old"], 150)  # gone once a GC run has come after the commit
    wait_for(lambda: not stored(dsn, "gc-probe"), within=10, message="the garbage collector did not run")
    with contextlib.closing(connect(dsn, "postgres")) as conn, conn.cursor() as cr:
        notify.notify(cr, ["slow"])
    try:
        wait_for(lambda: follower.messages() == ["first", "fast", "from a long transaction"], within=10)
    finally:
        stop_followers([follower], srv.send)
