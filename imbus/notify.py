"""`NOTIFY imbus` with the notified channels, split under PostgreSQL's payload limit.

Like Odoo, the notification goes to the `postgres` database so one listener serves
every database of the cluster. A payload is the JSON list of channels; a channel too
big for any payload is announced as `"*"`, which wakes every waiter (stock Odoo raises).
"""

from typing import Any, Iterable, List

from .channels import json_dump

CHANNEL = "imbus"
LIMIT = 7999  # bytes; PostgreSQL refuses payloads of 8000 bytes and more
EVERYONE = '"*"'


def payloads(channels: Iterable[Any]) -> List[str]:
    """JSON lists of the distinct channels, each payload under LIMIT bytes."""
    return pack(json_dump(channel) for channel in channels)


def pack(keys: Iterable[str]) -> List[str]:
    """Payloads for channels already encoded with `json_dump`."""
    result: List[str] = []
    batch: List[str] = []
    size = 2
    for key in dict.fromkeys(keys):
        length = len(key.encode()) + 1
        if length + 2 > LIMIT:
            if EVERYONE not in result:
                result.append(EVERYONE)
            continue
        if size + length > LIMIT:
            result.append("[" + ",".join(batch) + "]")
            batch, size = [], 2
        batch.append(key)
        size += length
    if batch:
        result.append("[" + ",".join(batch) + "]")
    return result


def notify(cr, channels: Iterable[Any]) -> None:
    """Announce `channels`; run it on a cursor of the `postgres` database after the
    rows are committed, so woken pollers find them."""
    announce(cr, payloads(channels))


def announce(cr, messages: Iterable[str]) -> None:
    for payload in messages:
        cr.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
