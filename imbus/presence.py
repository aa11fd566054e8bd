"""Presence reports of fast polls, kept in memory and written in batches.

A logged-in browser reports its inactivity with every poll (`bus_inactivity`, in ms);
Odoo writes `bus.presence` on each. Polls served without the framework record it here
instead, and a flusher writes each user's latest report every few seconds. Only the
freshest report per user matters: the last poll's time, and the latest moment of
activity any of that user's tabs reported.
"""

import threading
import time
from typing import Any, Dict, Tuple


class PresenceBuffer:
    def __init__(self) -> None:
        self.pending: Dict[Tuple[str, Any], Tuple[float, float]] = {}  # (db, uid) -> (polled, active)
        self.lock = threading.Lock()

    def record(self, dbname: str, uid: Any, inactivity_ms: float) -> None:
        now = time.time()
        active = now - inactivity_ms / 1000.0
        with self.lock:
            previous = self.pending.get((dbname, uid))
            if previous is not None:
                active = max(active, previous[1])
            self.pending[(dbname, uid)] = (now, active)

    def take(self) -> Dict[str, Dict[Any, Tuple[float, float]]]:
        """Everything recorded since the last call: {db: {uid: (polled at, active at)}},
        times in seconds since the epoch."""
        with self.lock:
            pending, self.pending = self.pending, {}
        batches: Dict[str, Dict[Any, Tuple[float, float]]] = {}
        for (dbname, uid), times in pending.items():
            batches.setdefault(dbname, {})[uid] = times
        return batches
