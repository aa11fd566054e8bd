"""The polls waiting in this process, indexed by database and channel key.

A refresh that found rows of some channels wakes exactly the waiters of those channels;
a (re)connected listener wakes them all, since anything may have been committed.
"""

import threading
from typing import Dict, FrozenSet, Iterable, Optional, Set


class Waiter:
    """One waiting poll: its database, its channel keys (`json_dump` of each channel) and
    the event that wakes it."""

    __slots__ = ("cancelled", "dbname", "event", "keys")

    def __init__(self, dbname: str, keys: FrozenSet[str]) -> None:
        self.dbname = dbname
        self.keys = keys
        self.event = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        """End the wait now, empty-handed: nobody is left to answer (the client hung up)."""
        self.cancelled = True  # read by the poll only after the event below, which orders it
        self.event.set()


class Waiters:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards `index` and `count`
        self.index: Dict[str, Dict[str, Set[Waiter]]] = {}  # dbname -> channel key -> waiters
        self.count = 0

    def add(self, waiter: Waiter) -> None:
        with self.lock:
            keys = self.index.setdefault(waiter.dbname, {})
            for key in waiter.keys:
                keys.setdefault(key, set()).add(waiter)
            self.count += 1

    def remove(self, waiter: Waiter) -> None:
        with self.lock:
            keys = self.index[waiter.dbname]
            for key in waiter.keys:
                keys[key].discard(waiter)
                if not keys[key]:
                    del keys[key]
            if not keys:
                del self.index[waiter.dbname]
            self.count -= 1

    def wake(self, dbname: str, keys: Optional[Iterable[str]] = None) -> None:
        """Wake the waiters of `keys` in `dbname` (all of them when `keys` is None)."""
        with self.lock:
            index = self.index.get(dbname, {})
            groups = index.values() if keys is None else [index[key] for key in keys if key in index]
            woken = set().union(*groups)
        for waiter in woken:
            waiter.event.set()

    def wake_all(self) -> None:
        with self.lock:
            dbnames = list(self.index)
        for dbname in dbnames:
            self.wake(dbname)

    def watched(self, dbname: str, keys: Optional[Iterable[str]] = None) -> bool:
        """Whether anybody waits in `dbname` on one of `keys` (on anything when None)."""
        with self.lock:
            index = self.index.get(dbname, {})
            return bool(index) if keys is None else any(key in index for key in keys)
