"""Reads of `bus_bus` counted from the table statistics, where `pg_stat_statements`
cannot be read (a shared cluster started without it preloaded), on a real PostgreSQL."""

import contextlib
import uuid

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

from imbus.bench import scenarios
from imbus.bench.report import row
from imbus.bench.sql import Statements
from imbus.bench.targets import Standalone


@pytest.fixture
def reader(dsn):
    """A DSN of a role that may use `bus_bus` but may not create `pg_stat_statements`
    (not a trusted extension), as on a shared cluster: the bench must fall back."""
    role = "bench_" + uuid.uuid4().hex[:12]
    with contextlib.closing(psycopg2.connect(dsn)) as conn:
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute(f"CREATE ROLE {role} LOGIN")
            cr.execute(f"GRANT SELECT, INSERT, UPDATE ON bus_bus TO {role}")
            cr.execute(f"GRANT USAGE ON SEQUENCE bus_bus_id_seq TO {role}")
        try:
            yield make_dsn(dsn, user=role)
        finally:
            with conn.cursor() as cr:
                cr.execute(f"DROP OWNED BY {role}")
                cr.execute(f"DROP ROLE {role}")


def test_without_pg_stat_statements_each_read_of_bus_bus_is_one_scan(reader):
    dsn = reader
    statements = Statements(dsn, flush=0.5)  # the reader below exits, which publishes its counters at once
    statements.start()
    assert statements.source == "pg_stat_user_tables"
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cr:
        cr.execute("INSERT INTO bus_bus (channel, message) VALUES ('c', 'm'), ('c', 'n') RETURNING id")
        first = min(cr.fetchall())[0]
        conn.commit()
        cr.execute("SELECT id FROM bus_bus WHERE id > %s", [first])
        cr.execute("SELECT id FROM bus_bus WHERE channel = 'c'")
        cr.execute("SELECT count(*) FROM bus_bus")
        conn.commit()
    result = statements.stop()
    # three reads, and the commit-order trigger's renumbering of each inserted row by id
    assert (result["fetch"], result["inserted"]) == (3 + 2, 2)
    assert result["seq_scan"] + result["idx_scan"] == 3 + 2


def test_a_broadcast_reports_scans_per_broadcast_from_the_fallback(server, reader):
    srv = server()
    result = scenarios.broadcast(Standalone(srv.url), pollers=6, messages=2, dsn=reader, deadline=90)
    assert (result["lost"], result["duplicated"], result["http_errors"]) == (0, 0, 0)
    assert result["sql"]["source"] == "pg_stat_user_tables"
    assert result["sql"]["inserted"] == 2
    assert 1 <= result["broadcasts"]["fetch_per_broadcast"] < 6  # the pollers' re-polls read memory
    assert "scans" in row(result)
    assert "bus_bus scans/broadcast" in row(result)
