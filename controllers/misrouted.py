"""A poll that reached a prefork HTTP worker, where nothing can wait for notifications.

That happens when the proxy sends `/longpolling/` to the HTTP port instead of the
long-polling one. Every browser hits it on every poll, so the answer says what to fix,
the JS client backs off on it (`longpoll.js`), and the log gets one warning a minute
per process instead of Odoo's traceback per poll.
"""

import logging

from ..imbus.ratelimit import OncePer

MESSAGE = ("bus.Bus unavailable: this poll reached an HTTP worker, which cannot wait for notifications. "
           "Route /longpolling/ to the long-polling port (--longpolling-port, default 8072).")

_logger = logging.getLogger(__name__)
warnings = OncePer(60)


class BusUnavailable(Exception):
    """Raised for a misrouted poll; its JSON-RPC error carries `MESSAGE`."""


class DropMisrouted(logging.Filter):
    """Keeps Odoo's JSON dispatcher from logging a traceback for each misrouted poll."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], BusUnavailable))


def refuse() -> None:
    """Warn (rate-limited) and raise the error the client sees."""
    if warnings.ready():
        _logger.warning("%s (%d more such polls in this process since the last warning)",
                        MESSAGE, warnings.take_suppressed())
    raise BusUnavailable(MESSAGE)


def install_filter() -> None:
    http_logger = logging.getLogger('odoo.http')
    if not any(isinstance(f, DropMisrouted) for f in http_logger.filters):
        http_logger.addFilter(DropMisrouted())
