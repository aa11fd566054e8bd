"""Channel keys encoded exactly as Odoo 14 stores them in `bus_bus.channel`.

A channel is any JSON value; rows are matched on its compact JSON text, so the
encoding must be byte-for-byte Odoo's (see tests/golden/channel_keys.json).
"""

import datetime
import json
from typing import Any

TIMEOUT = 50  # seconds a poll waits, and the age of the `last` = 0 buffer


def json_default(obj: Any) -> str:
    """Render what JSON lacks the way Odoo's ORM formats dates."""
    if isinstance(obj, datetime.datetime):
        return obj.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(obj, datetime.date):
        return obj.strftime("%Y-%m-%d")
    if isinstance(obj, bytes):
        return obj.decode()
    return str(obj)


def json_dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=json_default)


def hashable(key: Any) -> Any:
    """A set/dict key for a channel: lists become tuples, dicts tuples of items."""
    if isinstance(key, (list, tuple)):
        return tuple(hashable(item) for item in key)
    if isinstance(key, dict):
        return tuple((name, hashable(item)) for name, item in key.items())
    return key
