"""At most one event per period: a misconfiguration hit on every request (a proxy
sending polls to the wrong port) is reported once a minute, not once per poll."""

import threading
import time
from typing import Callable


class OncePer:
    """`ready()` is True at most once per `period` seconds (thread- and greenlet-safe)."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.clock = clock
        self.lock = threading.Lock()
        self.next_at = float('-inf')
        self.suppressed = 0  # events refused since the last one allowed

    def ready(self) -> bool:
        with self.lock:
            now = self.clock()
            if now < self.next_at:
                self.suppressed += 1
                return False
            self.next_at = now + self.period
            return True

    def take_suppressed(self) -> int:
        """How many events were refused since the last call (for "N more" in a log line)."""
        with self.lock:
            count, self.suppressed = self.suppressed, 0
            return count
