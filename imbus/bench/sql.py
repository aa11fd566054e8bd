"""Statements the server ran during a run, from `pg_stat_statements`.

Two snapshots of the view, before and after the run, diffed per statement: nothing
is reset, so other users of the view are not disturbed. The view covers the whole
cluster (the bus database and the `postgres` database where NOTIFY runs); the
bench's own queries of the view are left out. Needs
`shared_preload_libraries=pg_stat_statements` (the embedded cluster has it) and the
extension in the database of `--dsn`, which the bench creates when it is missing and
it may.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg2

SNAPSHOT = """
SELECT dbid, userid, queryid, toplevel, calls, query FROM pg_stat_statements
WHERE query NOT LIKE '%%pg_stat_statements%%'
"""


def is_fetch(query: str) -> bool:
    """A statement that reads notifications (the stock bus's per-poller query)."""
    text = " ".join(query.split()).lower()
    return "from bus_bus" in text and not text.startswith(("insert", "delete", "update"))


class Statements:
    """Counts statements between `start()` and `stop()`; `available` is False (with a
    `reason`) when the view cannot be read."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn
        self.reason = "no --dsn given" if not dsn else ""
        self.before: dict[tuple, int] = {}
        self.result: dict[str, Any] | None = None

    @property
    def available(self) -> bool:
        return not self.reason

    def start(self) -> None:
        if self.dsn:
            self._create_extension()
            self.before = self._snapshot()[0]

    def stop(self) -> dict[str, Any] | None:
        """The statements run since `start`: total, fetches, and the busiest ones."""
        if not self.available:
            return None
        after, texts = self._snapshot()
        if not self.available:
            return None
        calls = {key: n - self.before.get(key, 0) for key, n in after.items()}
        by_text: dict[str, int] = {}
        for key, n in calls.items():
            if n > 0:
                text = " ".join(texts[key].split())
                by_text[text] = by_text.get(text, 0) + n
        top = sorted(by_text.items(), key=lambda item: -item[1])
        self.result = {
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

    def _snapshot(self) -> tuple[dict[tuple, int], dict[tuple, str]]:
        try:
            with contextlib.closing(psycopg2.connect(self.dsn)) as conn, conn.cursor() as cr:
                cr.execute(SNAPSHOT)
                rows = cr.fetchall()
        except psycopg2.Error as error:
            self.reason = f"pg_stat_statements unreadable: {str(error).strip().splitlines()[0]}"
            return {}, {}
        calls = {tuple(row[:4]): row[4] for row in rows}
        texts = {tuple(row[:4]): row[5] for row in rows}
        return calls, texts
