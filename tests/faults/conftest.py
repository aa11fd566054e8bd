"""Fixtures of the fault tests: servers on any database, a PostgreSQL of one's own."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import psycopg2
import psycopg2.extensions
import pytest
from bus_fixtures import Server
from faults_support import Follower

from imbus import store
from imbus.embedded import EmbeddedPostgres


@pytest.fixture(autouse=True)
def no_follower_left() -> Iterator[None]:
    """A test that fails midway leaves its Followers polling; stop them, so they never
    poll a later test's server on a reused port."""
    yield
    for follower in Follower.live:
        follower.stopping = True
    Follower.live.clear()


@pytest.fixture
def launch() -> Iterator[Callable[..., Server]]:
    """Factory: `launch(dsn, *args)` starts `python -m imbus serve`; all are stopped afterwards."""
    started: list[Server] = []

    def start(dsn: str, *args: str) -> Server:
        started.append(Server(dsn, list(args)).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()
        each.log.unlink(missing_ok=True)


class OwnCluster:
    """A PostgreSQL cluster for one test, which it may stop and restart at will."""

    def __init__(self, embedded: EmbeddedPostgres) -> None:
        self.embedded = embedded
        self.dsn = embedded.dsn("imbus_faults")


@pytest.fixture
def own_pg(tmp_path) -> Iterator[OwnCluster]:
    """A fresh embedded cluster with a database `imbus_faults` holding the bus table."""
    embedded = EmbeddedPostgres(tmp_path / "pg")
    try:
        embedded.start()
    except Exception as error:  # any reason to fail is a reason to skip
        embedded.destroy()
        given = " (BUS_DSN is set, but this test must restart its own PostgreSQL)" if os.environ.get("BUS_DSN") else ""
        pytest.skip(f"cannot start an embedded PostgreSQL{given}: {error}")
    try:
        with contextlib.closing(psycopg2.connect(embedded.dsn())) as conn:
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute("CREATE DATABASE imbus_faults")
                # The embedded cluster runs with synchronous_commit=off for speed, which lets a
                # crash lose acknowledged commits; a crash test needs PostgreSQL's default back.
                cr.execute("ALTER DATABASE imbus_faults SET synchronous_commit = on")
        cluster = OwnCluster(embedded)
        with contextlib.closing(psycopg2.connect(cluster.dsn)) as conn, conn.cursor() as cr:
            store.create_table(cr)
            conn.commit()
        yield cluster
    finally:
        embedded.destroy()
