"""Noticing that the client of a waiting poll has hung up, to free its waiter at once.

gevent-only (it watches the socket on gevent's event loop); used by the standalone
server and by Odoo's gevent long-polling process.
"""

import socket
from typing import Any, Optional

from .dispatcher import Waiter


class HangupWatch:
    """Cancels a waiting poll whose client closes its connection, so a vanished client
    leaves no waiter behind for the rest of the 50 s (stock Odoo keeps it until then).

    It is a bare event-loop watcher on the socket, not a greenlet: thousands of waiting
    polls then cost no stack each, and stopping it is instant (nothing to kill)."""

    def __init__(self, sock: Optional[socket.socket]) -> None:
        self.sock = sock
        self.watcher: Any = None
        self.waiter: Optional[Waiter] = None

    def start(self, waiter: Waiter) -> None:
        if self.sock is not None:
            import gevent

            self.waiter = waiter
            self.watcher = gevent.get_hub().loop.io(self.sock.fileno(), 1)
            self.watcher.start(self._readable)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher.close()
            self.watcher = None

    def _readable(self) -> None:
        """Runs in the event loop. A waiting client sends nothing: readable means closed
        (b'') or reset; anything else (a pipelined request) is left for the handler."""
        raw = getattr(self.sock, "_sock", self.sock)  # gevent's socket wraps a non-blocking one
        try:
            data = raw.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return  # a spurious wake-up (libev has them, epoll with reused file numbers): keep watching
        except OSError:
            data = b""
        self.stop()
        if not data and self.waiter is not None:
            self.waiter.cancel()
