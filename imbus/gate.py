"""A gate that bounds how many requests work inside a framework at once; the rest queue.

In Odoo's gevent process every request inside Odoo's dispatch may hold one or two
connections of a pool shared with the dispatcher (`db_maxconn`, 64 by default); past
that, requests fail with "The Connection Pool Is Full" (HTTP 500). With the gate in
front, a crowd of requests waits its turn instead. A long poll leaves the gate as soon
as it starts waiting (`Slot.release`), so waiting polls never hold a place.
"""

import threading
from typing import Any, Optional


class Slot:
    """One place inside the gate; `release` is idempotent (the poll leaves before the
    request ends, the request's end releases again)."""

    __slots__ = ("gate",)

    def __init__(self, gate: "Gate") -> None:
        self.gate: Optional[Gate] = gate

    def release(self) -> None:
        gate, self.gate = self.gate, None
        if gate is not None:
            gate._leave()

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class Gate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside = 0
        self.queued = 0
        self.semaphore = threading.Semaphore(limit)
        self.lock = threading.Lock()

    def enter(self) -> Slot:
        """Wait for a place (in arrival order under gevent) and take it."""
        if not self.semaphore.acquire(blocking=False):
            with self.lock:
                self.queued += 1
            try:
                self.semaphore.acquire()
            finally:
                with self.lock:
                    self.queued -= 1
        with self.lock:
            self.inside += 1
        return Slot(self)

    def _leave(self) -> None:
        with self.lock:
            self.inside -= 1
        self.semaphore.release()
