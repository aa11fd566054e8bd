"""Several standalone servers on one database, clients hopping between them: every
committed notification reaches every client exactly once, in id order.

A client behaves like the stock JS client: it polls with the highest id it has and keeps
whatever comes (it would drop only an id it has already seen). So the assertions are:
the ids a client received are strictly increasing, and its messages are exactly those
committed. Every wait ends on an event (an answer, an "end" message), never on a sleep.
"""

import contextlib
import itertools
import random
import threading
import time

import psycopg2
import psycopg2.extensions
import pytest
from waiting import wait_for

from imbus import notify, sender, store

CHANNEL = "multi"
END = "end"


class Client(threading.Thread):
    """Polls `channel` from its `last` on a server picked by `choose` for each poll,
    until it receives END; a failed poll (server killed) is retried on another pick."""

    def __init__(self, choose, last=0, channel=CHANNEL):
        super().__init__(daemon=True)
        self.choose, self.last, self.channel = choose, last, channel
        self.ids, self.messages, self.failures = [], [], 0

    def run(self):
        deadline = time.monotonic() + 60
        while END not in self.messages and time.monotonic() < deadline:
            try:
                items = self.choose().poll([self.channel], self.last, timeout=60)
            except Exception:  # refused or reset: that server is down
                self.failures += 1
                time.sleep(0.05)  # pacing of retries only; nothing waits on it
                continue
            self.take(items)

    def take(self, items):
        for item in items:
            self.ids.append(item["id"])
            self.messages.append(item["message"])
            self.last = max(self.last, item["id"])

    def outcome(self, within=60):
        self.join(within)
        assert not self.is_alive(), "the client never received the end"
        return self


def exactly_once(client, committed):
    assert client.ids == sorted(set(client.ids)), f"ids repeated or out of order: {client.ids}"
    assert sorted(map(str, client.messages)) == sorted(map(str, [*committed, END]))


def announce(dsn, channels):
    postgres = psycopg2.extensions.make_dsn(dsn, dbname="postgres")
    with contextlib.closing(psycopg2.connect(postgres)) as conn, conn.cursor() as cr:
        notify.notify(cr, channels)
        conn.commit()


def test_a_client_back_on_another_server_between_a_late_commit_and_its_notify_gets_it_once(server, dsn, database):
    """The scenario of issue 10 (watching holes on the reader side gave a duplicate 10
    times of 10), three rounds."""
    a, b = server(), server()
    for round_ in range(3):
        channel = f"{CHANNEL}-{round_}"
        first = Client(lambda: a, channel=channel)
        first.start()
        slow = psycopg2.connect(dsn)
        try:
            with slow.cursor() as cr:
                (taken,) = store.insert(cr, [(channel, "slow")])  # takes id N and holds it
            sender.sendone(database, database.dbname, channel, "fast")  # N+1 commits
            while "fast" not in first.messages:  # the poller on A passes N
                assert first.is_alive()
                first.join(0.01)
            slow.commit()  # N commits; its NOTIFY is not sent yet
        finally:
            slow.close()
        back = Client(lambda: b, last=taken - 1, channel=channel)  # away meanwhile, back on B below N
        back.start()
        while "slow" not in back.messages:
            assert back.is_alive()
            back.join(0.01)
        announce(dsn, [channel])
        for client in (first, back):  # from now on, A and B in turn
            client.choose = itertools.cycle((a, b)).__next__
        sender.sendone(database, database.dbname, channel, END)
        for client in (first, back):
            exactly_once(client.outcome(), ["fast", "slow"])


def test_random_out_of_order_commits_with_clients_hopping_between_three_servers(server, dsn, database):
    servers = [server() for _ in range(3)]
    rng = random.Random(10)
    clients = [Client(lambda: rng.choice(servers)) for _ in range(5)]
    for client in clients:
        client.start()
    committed = []
    lock = threading.Lock()

    def write(seed):
        mine = random.Random(seed)
        with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cr:
            for n in range(10):
                batch = [f"{seed}-{n}-{k}" for k in range(mine.randint(1, 3))]
                store.insert(cr, [(CHANNEL, message) for message in batch])
                time.sleep(mine.uniform(0, 0.02))  # commit in scrambled order
                conn.commit()
                with lock:
                    committed.extend(batch)
                announce(dsn, [CHANNEL])

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    sender.sendone(database, database.dbname, CHANNEL, END)
    for client in clients:
        exactly_once(client.outcome(), committed)


def test_one_server_killed_mid_stream_and_restarted_while_clients_move_to_the_other(server, database):
    a, b = server(), server()
    rng = random.Random(11)
    pool = [a]  # where clients poll: all on A, then B while A is down, then both
    clients = [Client(lambda: rng.choice(pool)) for _ in range(4)]
    for client in clients:
        client.start()
    committed = []

    def send(count):
        for _ in range(count):
            sender.sendone(database, database.dbname, CHANNEL, len(committed))
            committed.append(len(committed))

    send(15)
    wait_for(lambda: a.health()["waiters"] >= len(clients), within=30,  # every client waits on A ...
             message="the clients are not all waiting on A")
    pool[:] = [b]
    a.kill()  # ... when it dies
    send(10)
    a.start()  # on the same port
    pool[:] = [a, b]
    send(15)
    sender.sendone(database, database.dbname, CHANNEL, END)
    for client in clients:
        exactly_once(client.outcome(), committed)
        assert client.failures >= 1  # its poll on A was cut


@pytest.fixture(autouse=True)
def _bounded():
    """Each scenario stays well within the suite's per-test timeout."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 90
