"""Reads of `bus_bus` counted from the table statistics, where `pg_stat_statements`
cannot be read (a shared cluster started without it preloaded), on a real PostgreSQL."""

import contextlib

import psycopg2

from imbus.bench import scenarios
from imbus.bench.report import row
from imbus.bench.sql import Statements
from imbus.bench.targets import Standalone


def test_without_pg_stat_statements_each_read_of_bus_bus_is_one_scan(dsn):
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
    assert (result["fetch"], result["inserted"]) == (3, 2)
    assert result["seq_scan"] + result["idx_scan"] == 3


def test_a_broadcast_reports_scans_per_broadcast_from_the_fallback(server, dsn):
    srv = server()  # no pg_stat_statements extension in this database
    result = scenarios.broadcast(Standalone(srv.url), pollers=6, messages=2, dsn=dsn, deadline=90)
    assert (result["lost"], result["duplicated"], result["http_errors"]) == (0, 0, 0)
    assert result["sql"]["source"] == "pg_stat_user_tables"
    assert result["sql"]["inserted"] == 2
    assert 1 <= result["broadcasts"]["fetch_per_broadcast"] < 6  # the pollers' re-polls read memory
    assert "scans" in row(result)
    assert "bus_bus scans/broadcast" in row(result)
