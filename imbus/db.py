"""Connections of the standalone server: a bounded pool per database, and the listener's.

Pools block when full instead of failing, so a burst of sends waits its turn; waiting
polls hold no connection at all (they wait on the dispatcher, not on the database).
"""

import _socket
import contextlib
import socket
import threading
from typing import Any, Dict, Iterator, Optional, Tuple

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from .dispatcher import Database

# Detect a silently dead server within a minute instead of hanging on it.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 5, "keepalives_count": 3}


def with_dbname(dsn: str, dbname: str) -> str:
    return psycopg2.extensions.make_dsn(dsn, dbname=dbname)


class Pools(Database):
    """The `Database` of the standalone server: one pool per database of one cluster."""

    def __init__(self, dsn: str, listen_dsn: Optional[str] = None, size: int = 8) -> None:
        self.dsn = dsn
        self.dbname = psycopg2.extensions.parse_dsn(dsn).get("dbname", "postgres")
        self.listen_dsn = listen_dsn or with_dbname(dsn, "postgres")
        self.size = size
        self.pools: Dict[str, Tuple[psycopg2.pool.ThreadedConnectionPool, threading.Semaphore]] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def cursor(self, dbname: str) -> Iterator[Any]:
        """A cursor whose statements each commit by themselves (autocommit). Every block
        of the core runs a single statement, so this commits on a clean exit like a
        transaction would, in one round trip instead of three (psycopg2 sends BEGIN and
        COMMIT apart): a send fell from ~370 to ~220 us of server CPU, and its INSERT and
        NOTIFY still commit separately. Several statements that must commit together
        need a transaction of their own (`with cr.connection:` on this cursor)."""
        pool, slots = self._pool(dbname)
        with slots:
            conn = self._checkout(pool)
            conn.autocommit = True  # see the docstring
            try:
                with conn.cursor() as cr:
                    yield cr
                conn.commit()
            except BaseException:
                if not conn.closed:
                    conn.rollback()
                raise
            finally:
                pool.putconn(conn, close=bool(conn.closed))

    def _checkout(self, pool: psycopg2.pool.ThreadedConnectionPool) -> Any:
        """An idle connection the server has not cut meanwhile. After a restart or a
        `pg_terminate_backend`, a pooled connection has the server's farewell (or EOF)
        waiting to be read and would fail the request: close it and take another."""
        for _ in range(self.size):
            conn = pool.getconn()
            if not conn.closed and not _spoken(conn):
                return conn
            pool.putconn(conn, close=True)
        return pool.getconn()

    def listen_connection(self) -> Any:
        return psycopg2.connect(self.listen_dsn, **KEEPALIVE)

    def close(self) -> None:
        with self.lock:
            for pool, _ in self.pools.values():
                pool.closeall()
            self.pools.clear()

    def _pool(self, dbname: str) -> Tuple[psycopg2.pool.ThreadedConnectionPool, threading.Semaphore]:
        with self.lock:
            if dbname not in self.pools:
                dsn = self.dsn if dbname == self.dbname else with_dbname(self.dsn, dbname)
                # minconn = size: psycopg2 closes a returned connection whenever more than minconn are idle
                pool = psycopg2.pool.ThreadedConnectionPool(self.size, self.size, dsn, **KEEPALIVE)
                self.pools[dbname] = (pool, threading.Semaphore(self.size))
            return self.pools[dbname]


def _spoken(conn: Any) -> bool:
    """Whether the server closed an idle connection or sent on it (it only ever sends a
    farewell unasked). A non-blocking peek at the socket: `select()` fails outright once
    the process holds more than 1024 files, as it does with a thousand waiting polls."""
    sock = _socket.socket(fileno=conn.fileno())  # the C socket: gevent's would wait for data
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.detach()  # the descriptor stays psycopg2's
