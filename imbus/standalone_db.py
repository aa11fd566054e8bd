"""The standalone server's database: the one given, or the embedded demo cluster.

Prepared once per server, before any worker process starts: the `bus_bus` table is
created when missing (concurrent `CREATE TABLE IF NOT EXISTS` from several workers can
collide in the catalog). Imports nothing gevent-patched, so a parent that forks
workers may use it.
"""

import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional

import psycopg2

from . import store
from .embedded import EmbeddedPostgres


@contextlib.contextmanager
def database(dsn: Optional[str], data_dir: Path) -> Iterator[str]:
    """The DSN to serve, with its table ready; without `dsn`, an embedded cluster in
    `data_dir` (started or reused, stopped at the end) with a database `imbus`."""
    cluster = None
    if not dsn:
        cluster = EmbeddedPostgres(data_dir / "pg", _saved_port(data_dir))
        print(f"imbus: PostgreSQL data in {cluster.data_dir}", flush=True)
        cluster.start()
        (data_dir / "port").write_text(str(cluster.port))
        with _cursor(cluster.dsn()) as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = 'imbus'")
            if not cr.fetchone():
                cr.execute("CREATE DATABASE imbus")
        dsn = cluster.dsn("imbus")
    try:
        with _cursor(dsn) as cr:
            store.create_table(cr)
        yield dsn
    finally:
        if cluster is not None:
            cluster.stop()


@contextlib.contextmanager
def _cursor(dsn: str) -> Iterator[Any]:
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True
        with conn.cursor() as cr:
            yield cr


def _saved_port(data_dir: Path) -> Optional[int]:
    path = data_dir / "port"
    return int(path.read_text()) if path.exists() else None
