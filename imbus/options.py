"""What `python -m imbus serve` was asked for, with its defaults.

Imports nothing but the standard library: the command line and the parent of the
workers read it before (or without) gevent patching the process.
"""

from typing import NamedTuple, Optional

MAX_BODY = 1024 * 1024  # bytes of a request body
GC_PERIOD = 60.0  # seconds between deletions of old rows, off the request path


class Options(NamedTuple):
    dsn: str
    listen_dsn: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8072
    send_token: Optional[str] = None
    max_body: int = MAX_BODY
    gc_period: float = GC_PERIOD
