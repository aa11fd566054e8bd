"""PostgreSQL restarts under the server's feet while polls wait and senders send."""

import contextlib
import threading
import time

import pytest
from faults_support import (
    Follower,
    call,
    connect,
    dbname_of,
    health,
    post,
    query,
    server_backends,
    stop_followers,
    stored,
)
from waiting import wait_for


class Sender(threading.Thread):
    """Sends `prefix-N` over HTTP every few milliseconds; keeps each answer."""

    def __init__(self, url: str, channel: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.url, self.channel, self.prefix = url, channel, prefix
        self.accepted: list[str] = []
        self.refused: list[dict] = []
        self.stopping = False
        self.start()

    def run(self) -> None:
        n = 0
        while not self.stopping:
            message = f"{self.prefix}-{n}"
            status, body = post(self.url, "/longpolling/send", call({"channel": self.channel, "message": message}))
            assert status == 200 and isinstance(body, dict), (status, body)
            if "error" in body:
                self.refused.append(body["error"])
            else:
                self.accepted.append(message)
            n += 1
            time.sleep(0.01)


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # immediate: a crash, recovered from the WAL
def test_postgres_restart_loses_nothing_committed_and_failed_sends_say_so(own_pg, launch, mode):
    srv = launch(own_pg.dsn)
    followers = [Follower(srv.url, "orders") for _ in range(3)]
    wait_for(lambda: health(srv.url)["waiters"] == 3)
    senders = [Sender(srv.url, "orders", name) for name in ("a", "b")]
    wait_for(lambda: all(len(each.accepted) >= 10 for each in senders))

    own_pg.embedded.stop(mode)  # every connection is cut
    wait_for(lambda: health(srv.url)["status"] == "degraded", within=5)  # the listener noticed
    started = time.monotonic()
    _, body = post(srv.url, "/longpolling/poll", call({"channels": ["orders"], "last": 0, "options": {}}))
    assert body["error"]["data"]["name"].startswith("psycopg2."), body  # said at once, not after 50 s
    assert time.monotonic() - started < 10
    attempts = health(srv.url)["reconnects"]
    wait_for(lambda: health(srv.url)["reconnects"] >= attempts + 2, within=15,
             message="the listener stopped trying to reconnect")  # it failed twice meanwhile
    own_pg.embedded.start()
    wait_for(lambda: health(srv.url)["listening"], within=15, message="the listener did not come back")
    accepted_after = [len(each.accepted) for each in senders]
    wait_for(lambda: all(len(each.accepted) >= count + 10 for each, count in zip(senders, accepted_after)),
             message="sends do not work again after the restart")
    for each in senders:
        each.stopping = True
        each.join(10)

    assert srv.process.poll() is None, "the server died with its database"
    refusals = [error for each in senders for error in each.refused]
    assert refusals, "no send overlapped the outage: the test proves nothing"
    for error in refusals:  # a clear, Odoo-shaped error naming the database failure
        assert error["code"] == 200 and error["message"] == "Odoo Server Error"
        assert error["data"]["name"].startswith("psycopg2."), error

    committed = [message for _, message in stored(own_pg.dsn, "orders")]
    accepted = [message for each in senders for message in each.accepted]
    assert set(accepted) <= set(committed), "a send reported as done was not stored"
    wait_for(lambda: all(sorted(follower.messages()) == sorted(committed) for follower in followers), within=10,
             message="committed notifications were not all delivered")
    stop_followers(followers, srv.send)
    for follower in followers:
        assert len(set(follower.messages())) == len(follower.messages()), "a notification came twice"


def test_pooled_connections_cut_by_the_server_fail_no_request(server, dsn):
    """After a restart or `pg_terminate_backend`, the pool holds dead connections; the
    next requests must get live ones instead of failing one by one."""
    srv = server()
    senders = [threading.Thread(target=srv.send, args=("pool", n)) for n in range(16)]
    for each in senders:
        each.start()
    for each in senders:
        each.join(10)
    wait_for(lambda: server_backends(dsn), message="the pool kept no connection to cut")
    cut = query(dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert cut
    wait_for(lambda: not server_backends(dsn))  # the backends are gone; the pool does not know yet
    for n in range(10):
        envelope = srv.rpc("/longpolling/send", {"channel": "pool", "message": f"after-{n}"})
        assert "error" not in envelope, envelope
        assert "error" not in srv.rpc("/longpolling/poll", {"channels": ["pool"], "last": 0, "options": {"peek": True}})


def test_a_locked_table_stalls_sends_but_not_the_server(server, dsn):
    """Another transaction holds bus_bus exclusively (stock Odoo's GC did, inside
    requests): sends queue for the lock and for the pool, the rest keeps answering,
    and everything queued goes through once the lock is released."""
    srv = server()
    srv.send("locked", "before")
    last = srv.poll(["locked"], 0)[-1]["id"]
    follower = Follower(srv.url, "locked", last)
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    with contextlib.closing(connect(dsn)) as holder, holder.cursor() as cr:
        cr.execute("BEGIN; LOCK TABLE bus_bus IN ACCESS EXCLUSIVE MODE")
        answers = []
        senders = [threading.Thread(target=lambda n=n: answers.append(srv.rpc("/longpolling/send", {
            "channel": "locked", "message": n}))) for n in range(20)]  # more than the pool's 8 connections
        for each in senders:
            each.start()
        wait_for(lambda: len(query(dsn, "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type"
                                        " = 'Lock'", [dbname_of(dsn)], dbname="postgres")) >= 8, within=15,
                 message="the pool's 8 connections are not all waiting for the lock")
        assert all(each.is_alive() for each in senders), "sends went through a locked table"
        started = time.monotonic()
        assert health(srv.url)["waiters"] == 1
        assert time.monotonic() - started < 10, "health waits for the database"  # which would be forever
        cr.execute("COMMIT")
    for each in senders:
        each.join(10)
        assert not each.is_alive()
    assert answers == [{"jsonrpc": "2.0", "id": 1}] * 20
    wait_for(lambda: sorted(follower.messages()) == list(range(20)), within=5)
    stop_followers([follower], srv.send)
