"""SQL on the `bus_bus` table, for any DB-API cursor (psycopg2's or Odoo's).

The table is the one Odoo's ORM creates for model `bus.bus`; the standalone server
creates it when missing so both can share a database.
"""

import json
from typing import Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .channels import TIMEOUT, json_dump

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bus_bus (
    id serial PRIMARY KEY,
    channel varchar,
    message varchar,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
)
"""

NOW = "(now() at time zone 'utc')"  # transaction start, in UTC, as Odoo's ORM stamps rows


class Row(NamedTuple):
    """A stored notification; `channel` and `message` are the stored JSON texts."""

    id: int
    channel: str
    message: str
    created: Any  # naive UTC datetime

    def as_dict(self) -> dict:
        return {"id": self.id, "channel": json.loads(self.channel), "message": json.loads(self.message)}


def create_table(cr) -> None:
    cr.execute(CREATE_TABLE)


def insert(cr, notifications: Iterable[Tuple[Any, Any]], uid: Optional[int] = None) -> List[int]:
    """Store notifications in one statement; returns their ids in order."""
    params: List[Any] = []
    for channel, message in notifications:
        params += [json_dump(channel), json_dump(message), uid, uid]
    if not params:
        return []
    values = ",".join([f"(%s, %s, %s, {NOW}, %s, {NOW})"] * (len(params) // 4))
    cr.execute(
        "INSERT INTO bus_bus (channel, message, create_uid, create_date, write_uid, write_date)"
        f" VALUES {values} RETURNING id",
        params,
    )
    return [row[0] for row in cr.fetchall()]


def fetch(cr, channels: Iterable[Any], last: int = 0) -> List[dict]:
    """Odoo's `bus.bus.poll`: with `last` = 0 the channels' rows of the last TIMEOUT
    seconds, else their rows with an id above `last`; oldest first."""
    keys = sorted({json_dump(channel) for channel in channels})
    return [row.as_dict() for row in select(cr, keys, int(last or 0))]


def select(cr, keys: Sequence[str], last: int, upto: Optional[int] = None,
           exclude: Sequence[int] = ()) -> List[Row]:
    """Rows of the encoded channels `keys` after `last` (or, for 0, of the last TIMEOUT
    seconds), at most `upto`, leaving out the ids in `exclude`."""
    if not keys:
        return []
    if last:
        where, params = "id > %s", [last]
    else:
        where = "create_date > (statement_timestamp() at time zone 'utc') - make_interval(secs => %s)"
        params = [TIMEOUT]
    if upto is not None:
        where += " AND id <= %s"
        params.append(upto)
    cr.execute(
        f"SELECT id, channel, message, create_date FROM bus_bus WHERE {where}"
        " AND channel = ANY(%s) AND NOT id = ANY(%s::int[]) ORDER BY id",
        [*params, list(keys), list(exclude)],
    )
    return [Row(*row) for row in cr.fetchall()]


class Snapshot(NamedTuple):
    """What a feed refresh saw: new and re-checked rows, and which transactions were
    still running (txid bounds), to tell an in-flight id from a rolled-back one."""

    rows: List[Row]
    xmin: int
    xmax: int


def read_since(cr, after: int, pending: Sequence[int]) -> Snapshot:
    """Every row above `after`, plus those of `pending` (ids at or below it) now visible."""
    cr.execute(
        """
        WITH seen AS (
            SELECT id, channel, message, create_date FROM bus_bus WHERE id > %s
            UNION ALL
            SELECT id, channel, message, create_date FROM bus_bus WHERE id = ANY(%s::int[]) AND id <= %s
        )
        SELECT txid_snapshot_xmin(txid_current_snapshot()), txid_snapshot_xmax(txid_current_snapshot()),
               seen.id, seen.channel, seen.message, seen.create_date
        FROM (SELECT 1) AS one LEFT JOIN seen ON true
        ORDER BY seen.id
        """,
        [after, list(pending), after],
    )
    result = cr.fetchall()
    rows = [Row(*row[2:]) for row in result if row[2] is not None]
    return Snapshot(rows, result[0][0], result[0][1])


def recent(cr, count: int, age: float = TIMEOUT) -> Tuple[List[Row], Any]:
    """What a feed starts from: the rows among the `count` highest ids (holes there may be
    in flight) and those created in the last `age` seconds (so `last` = 0 polls are
    answered from memory at once), with that creation cutoff."""
    cr.execute("SELECT (statement_timestamp() at time zone 'utc') - make_interval(secs => %s)", [age])
    since = cr.fetchone()[0]
    cr.execute(
        "SELECT id, channel, message, create_date FROM bus_bus"
        " WHERE id > (SELECT COALESCE(max(id), 0) FROM bus_bus) - %s OR create_date > %s ORDER BY id",
        [count, since],
    )
    return [Row(*row) for row in cr.fetchall()], since


def renumber(cr, ids: Sequence[int]) -> List[Row]:
    """Give rows fresh ids from the table's sequence, so pollers already past their old
    ids still get them, and date them now, when they became visible (a long transaction
    stamps its start, which the GC would take for old); returns the renumbered rows."""
    cr.execute(
        "UPDATE bus_bus SET id = nextval(pg_get_serial_sequence('bus_bus', 'id')),"
        f" create_date = {NOW}, write_date = {NOW}"
        " WHERE id = ANY(%s::int[]) RETURNING id, channel, message, create_date",
        [list(ids)],
    )
    return sorted((Row(*row) for row in cr.fetchall()), key=lambda row: row.id)


def gc(cr, max_age: float = 2 * TIMEOUT, upto: Optional[int] = None, keep: Sequence[int] = ()) -> int:
    """Delete rows older than `max_age` seconds; returns how many. A dispatcher passes
    the highest id it has read (`upto`) and the ids it still waits for (`keep`): a long
    transaction's rows look old the moment they commit, and must be read first."""
    where = "create_date < (statement_timestamp() at time zone 'utc') - make_interval(secs => %s)"
    params: List[Any] = [max_age]
    if upto is not None:
        where += " AND id <= %s AND NOT id = ANY(%s::int[])"
        params += [upto, list(keep)]
    cr.execute(f"DELETE FROM bus_bus WHERE {where}", params)
    return cr.rowcount
