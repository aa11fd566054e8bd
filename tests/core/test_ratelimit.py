"""OncePer on a clock the test moves, and under threads racing for the same slot."""

import threading

from imbus.ratelimit import OncePer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_once_per_period_and_the_count_of_the_rest():
    clock = Clock()
    limit = OncePer(60, clock)
    assert limit.ready()
    assert [limit.ready() for _ in range(5)] == [False] * 5
    clock.now += 59.9
    assert not limit.ready()
    clock.now += 0.1
    assert limit.ready()
    assert limit.take_suppressed() == 6
    assert limit.take_suppressed() == 0
    clock.now += 60
    assert limit.ready()


def test_one_winner_among_racing_threads():
    limit = OncePer(3600)
    start = threading.Barrier(8)
    wins = []

    def hit():
        start.wait(5)
        wins.append(limit.ready())

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(wins) == [False] * 7 + [True]
    assert limit.take_suppressed() == 7
