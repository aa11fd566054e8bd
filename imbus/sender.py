"""Sending from the standalone server or any Python program: store, commit, announce."""

from typing import Any, Iterable, Tuple

from . import notify, store
from .dispatcher import Database


def sendmany(database: Database, dbname: str, notifications: Iterable[Tuple[Any, Any]]) -> None:
    """Store `(channel, message)` pairs in one transaction, then NOTIFY their channels.

    The NOTIFY runs in its own tiny transaction after the commit, as in Odoo: a
    transaction that notifies takes a global lock at commit time. Nothing is returned:
    the rows get their ids when they commit (see `ordering`), like in Odoo's `sendmany`.
    """
    notifications = list(notifications)
    with database.cursor(dbname) as cr:
        store.insert(cr, notifications)
    database.announce(notify.payloads(channel for channel, _ in notifications))


def sendone(database: Database, dbname: str, channel: Any, message: Any) -> None:
    sendmany(database, dbname, [(channel, message)])
