"""One connection per process kept open for `NOTIFY imbus`.

Odoo's pool never keeps a connection to the `postgres` database (its cursor closes
them when given back), so a NOTIFY through `db_connect('postgres')`, as stock Odoo
sends one after every commit that notifies, opens a new PostgreSQL backend each time:
a few milliseconds of every send, and a fork on the server. This keeps one connection
in autocommit instead, shared by the process's threads or greenlets under a lock.
A connection that broke since its last use is replaced and the NOTIFY sent again
(a NOTIFY twice only wakes pollers twice; they re-read). A forked child opens its own.
"""

import os
import threading
from typing import Any, Callable, Iterable, List, Optional

import psycopg2

from . import notify


class Notifier:
    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.connection: Optional[Any] = None
        self.pid = 0
        self.lock = threading.Lock()

    def notify(self, channels: Iterable[Any]) -> None:
        """NOTIFY `channels` now, each payload in a transaction of its own; raises if
        PostgreSQL cannot be reached twice in a row."""
        self.announce(notify.payloads(channels))

    def announce(self, payloads: List[str]) -> None:
        """NOTIFY payloads made by `notify.payloads` (or a heartbeat), as `notify` does."""
        with self.lock:
            try:
                self._announce(payloads)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self.close()
                self._announce(payloads)

    def _announce(self, payloads: List[str]) -> None:
        if self.connection is None or self.connection.closed or self.pid != os.getpid():
            self.connection = self.connect()  # a parent's connection is left to the parent
            self.connection.autocommit = True
            self.pid = os.getpid()
        with self.connection.cursor() as cr:
            notify.announce(cr, payloads)

    def close(self) -> None:
        if self.connection is not None and self.pid == os.getpid():
            self.connection.close()
        self.connection = None
