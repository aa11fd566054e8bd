"""Statements the server ran during a run, from `pg_stat_statements`, or, where that
view cannot be read, the scans of the `bus_bus` table from `pg_stat_user_tables`.

Two snapshots, before and after the run, diffed: nothing is reset, so other users of
the views are not disturbed.

`pg_stat_statements` covers the whole cluster (the bus database and the `postgres`
database where NOTIFY runs); the bench's own queries of the view are left out. It needs
`shared_preload_libraries=pg_stat_statements` (the embedded cluster has it) and the
extension in the database of `--dsn`, which the bench creates when it may.

The fallback needs nothing but `--dsn`: every read of notifications is one sequential
or index scan of `bus_bus`, so seq_scan + idx_scan counts the reads (the ORM's garbage
collection of old rows counts too, and so does the commit-order trigger: one index scan
per inserted row, see `imbus/ordering.py`). A shared cluster that was not started with the
extension preloaded can be measured without restarting it. Since PostgreSQL 15 an idle
backend publishes its table counters only up to `STATS_FLUSH` s after its last
transaction, so each snapshot first waits that long: the counts are exact only if the
server's activity outside the run is quiet around them.
"""

from __future__ import annotations

import contextlib
from typing import Any

import gevent
import psycopg2

SNAPSHOT = """
SELECT dbid, userid, queryid, toplevel, calls, query FROM pg_stat_statements
WHERE query NOT LIKE '%%pg_stat_statements%%'
"""
TABLE_SNAPSHOT = """
SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0), n_tup_ins FROM pg_stat_user_tables
WHERE relname = 'bus_bus' AND schemaname = current_schema()
"""
STATS_FLUSH = 11.0  # PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s) and a margin


def is_fetch(query: str) -> bool:
    """A statement that reads notifications (the stock bus's per-poller query)."""
    text = " ".join(query.split()).lower()
    return "from bus_bus" in text and not text.startswith(("insert", "delete", "update"))


class Statements:
    """Counts statements (or table scans) between `start()` and `stop()`; `available`
    is False (with a `reason`) when neither can be read."""

    def __init__(self, dsn: str | None, flush: float = STATS_FLUSH) -> None:
        self.dsn = dsn
        self.flush = flush
        self.reason = "no --dsn given" if not dsn else ""
        self.source = "pg_stat_statements"
        self.before: dict[tuple, int] = {}
        self.result: dict[str, Any] | None = None

    @property
    def available(self) -> bool:
        return not self.reason

    def start(self) -> None:
        if self.dsn:
            self._create_extension()
            self.before = self._read()[0]

    def stop(self) -> dict[str, Any] | None:
        """What ran since `start`: total statements, fetches and the busiest ones; or,
        from the fallback, the scans of `bus_bus` as fetches and the rows inserted."""
        if not self.available:
            return None
        after, texts = self._read()
        if not self.available:
            return None
        if self.source == "pg_stat_user_tables":
            (seq, idx, inserted) = (after.get(key, 0) - self.before.get(key, 0) for key in ("seq", "idx", "ins"))
            self.result = {"source": self.source, "fetch": seq + idx, "seq_scan": seq, "idx_scan": idx,
                           "inserted": inserted}
            return self.result
        calls = {key: n - self.before.get(key, 0) for key, n in after.items()}
        by_text: dict[str, int] = {}
        for key, n in calls.items():
            if n > 0:
                text = " ".join(texts[key].split())
                by_text[text] = by_text.get(text, 0) + n
        top = sorted(by_text.items(), key=lambda item: -item[1])
        self.result = {
            "source": self.source,
            "total": sum(by_text.values()),
            "fetch": sum(n for text, n in by_text.items() if is_fetch(text)),
            "top": [{"calls": n, "query": text[:160]} for text, n in top[:8]],
        }
        return self.result

    def _create_extension(self) -> None:
        """Create the view if it is missing; without the right to, `_snapshot` says why it
        cannot be read."""
        with contextlib.suppress(psycopg2.Error), contextlib.closing(psycopg2.connect(self.dsn)) as conn:
            conn.autocommit = True
            with conn.cursor() as cr:
                cr.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _read(self) -> tuple[dict, dict]:
        if self.source == "pg_stat_statements":
            snapshot = self._snapshot()
            if self.available or self.before:
                return snapshot
            self.source, self.reason = "pg_stat_user_tables", ""  # unreadable from the start: fall back
        return self._table_snapshot(), {}

    def _snapshot(self) -> tuple[dict[tuple, int], dict[tuple, str]]:
        rows = self._rows(SNAPSHOT, "pg_stat_statements")
        if rows is None:
            return {}, {}
        calls = {tuple(row[:4]): row[4] for row in rows}
        texts = {tuple(row[:4]): row[5] for row in rows}
        return calls, texts

    def _table_snapshot(self) -> dict[str, int]:
        gevent.sleep(self.flush)  # let idle backends publish their counters
        rows = self._rows(TABLE_SNAPSHOT, "pg_stat_user_tables")
        if rows is None:
            return {}
        if not rows:
            self.reason = "no bus_bus table in the database of --dsn"
            return {}
        row = rows[0]
        return {"seq": row[0], "idx": row[1], "ins": row[2]}

    def _rows(self, query: str, view: str) -> list[tuple] | None:
        """The rows of `query`, or None with `reason` saying why `view` cannot be read."""
        try:
            with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cr:
                cr.execute(query)
                return cr.fetchall()
        except psycopg2.Error as error:
            self.reason = f"{view} unreadable: {str(error).strip().splitlines()[0]}"
            return None
