"""SQL on the `bus_bus` table, for any DB-API cursor (psycopg2's or Odoo's).

The table is the one Odoo's ORM creates for model `bus.bus`; the standalone server
creates it when missing so both can share a database. Ids taken at INSERT are replaced
at COMMIT by the commit-order trigger (`ordering`).
"""

import json
from typing import Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from . import ordering
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

COLUMNS = "id, channel, message, create_date"  # of a `Row`
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
    """The table as Odoo creates it, when missing, with the commit-order trigger."""
    cr.execute(CREATE_TABLE)
    ordering.install(cr)


def insert(cr, notifications: Iterable[Tuple[Any, Any]], uid: Optional[int] = None) -> List[int]:
    """Store notifications in one statement; returns their ids in order, valid until
    the commit (the commit-order trigger then gives the rows their final ids)."""
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


def select(cr, keys: Sequence[str], last: int, limit: Optional[int] = None) -> List[Row]:
    """Rows of the encoded channels `keys` after `last` (or, for 0, of the last TIMEOUT
    seconds on the database's clock), oldest first, at most `limit`."""
    if not keys:
        return []
    if last:
        where, params = "id > %s", [last]
    else:
        where = "create_date > (statement_timestamp() at time zone 'utc') - make_interval(secs => %s)"
        params = [TIMEOUT]
    cr.execute(
        f"SELECT {COLUMNS} FROM bus_bus WHERE {where} AND channel = ANY(%s)"
        " ORDER BY id LIMIT %s",
        [*params, list(keys), limit],
    )
    return [Row(*row) for row in cr.fetchall()]


def since(cr, after: int, count: int) -> Tuple[List[Row], Any]:
    """The first `count` rows above id `after`, and the database's clock (naive UTC)."""
    return _with_clock(cr, f"SELECT {COLUMNS} FROM bus_bus WHERE id > %s ORDER BY id LIMIT %s", [after, count])


def latest(cr, count: int) -> Tuple[List[Row], Any]:
    """The `count` rows with the highest ids, oldest first, and the database's clock."""
    return _with_clock(cr, f"SELECT {COLUMNS} FROM bus_bus ORDER BY id DESC LIMIT %s", [count])


def _with_clock(cr, rows: str, params: List[Any]) -> Tuple[List[Row], Any]:
    """The rows of query `rows` by id, and the database's clock, in one round trip."""
    cr.execute(
        "SELECT statement_timestamp() at time zone 'utc', picked.id, picked.channel, picked.message,"
        f" picked.create_date FROM (SELECT 1) AS one LEFT JOIN ({rows}) AS picked ON true ORDER BY picked.id",
        params,
    )
    result = cr.fetchall()
    return [Row(*row[1:]) for row in result if row[1] is not None], result[0][0]


def gc(cr, max_age: float = 2 * TIMEOUT) -> int:
    """Delete rows older than `max_age` seconds on the database's clock; returns how
    many. Rows are dated by their commit (see `ordering`), so a long transaction's rows
    are young when they appear."""
    cr.execute(
        "DELETE FROM bus_bus WHERE create_date < (statement_timestamp() at time zone 'utc')"
        " - make_interval(secs => %s)",
        [max_age],
    )
    return cr.rowcount
