"""The gate that bounds how many requests are inside Odoo at once, with real threads."""

import threading

from waiting import wait_for

from imbus.gate import Gate


def test_at_most_limit_inside_the_rest_queue_in_turn():
    gate = Gate(3)
    inside, most, done = [0], [0], []
    lock = threading.Lock()
    release = threading.Event()

    def request(n):
        with gate.enter():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait(5)
            with lock:
                inside[0] -= 1
            done.append(n)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    wait_for(lambda: (gate.inside, gate.queued) == (3, 7), within=5, message="not 3 inside, 7 queued")
    release.set()
    for thread in threads:
        thread.join(5)
    assert sorted(done) == list(range(10))
    assert most[0] == 3
    assert (gate.inside, gate.queued) == (0, 0)


def test_a_slot_released_early_lets_the_next_in_once():
    """A poll leaves the gate when it starts waiting; the end of its request releases
    again, which must not open a second place."""
    gate = Gate(1)
    slot = gate.enter()
    entered = threading.Event()
    follower = threading.Thread(target=lambda: (gate.enter(), entered.set()))
    follower.start()
    assert not entered.wait(0.1)
    slot.release()
    assert entered.wait(5)
    slot.release()
    with slot:
        pass
    assert gate.inside == 1
    assert not gate.semaphore.acquire(blocking=False), "still one place, taken by the follower"
    follower.join(5)
