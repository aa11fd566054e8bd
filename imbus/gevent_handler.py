"""A gevent `WSGIHandler` subclass for long-polling: no Nagle delay, the socket in sight.

gevent's handler sends an answer's headers and its body in two writes; on a keep-alive
connection without `TCP_NODELAY`, the body then waits for the client's (delayed) ACK of
the headers: ~40 ms on every small answer. The subclass sets `TCP_NODELAY` on each
accepted connection, and puts the client's socket in the environ (`CLIENT_SOCKET`) so a
waiting poll can notice a hang-up (`imbus.hangup.HangupWatch`). Like the standalone
server's handler, it yields before reading each next request of a connection, so that
the polls a broadcast woke all answer before their clients' re-polls are parsed, and
it takes `imbus.gevent_tuning`'s cheaper header reading and sending when the running
gevent is one those were checked against (Odoo 14 pins 1.5.0, which is).

Inside Odoo the subclass is installed while the gevent process serves its first request,
so the connection of that request (and any accepted before it) was made by Odoo's own
handler: `adopt` gives such a connection the same treatment from within the request.
"""

import socket
from typing import Any

import gevent

from .gevent_tuning import tuning

CLIENT_SOCKET = "imbus.client_socket"  # environ key of the connection, to notice a hang-up


def nodelay(sock: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def adopt(environ: dict) -> None:
    """Set TCP_NODELAY on the connection of a request that `polling_handler` did not
    accept, and put its socket in `environ`. gevent's server runs each connection in a
    greenlet spawned with `(handle, close, (socket, address))` (gevent 1.5 to 26): that
    is where the socket is found."""
    if CLIENT_SOCKET in environ:
        return
    for arg in getattr(gevent.getcurrent(), "args", ()):
        sock = arg[0] if isinstance(arg, tuple) and arg else None
        if hasattr(sock, "setsockopt") and hasattr(sock, "family"):
            nodelay(sock)
            environ[CLIENT_SOCKET] = sock
            return


def polling_handler(base: type) -> type:
    """A subclass of gevent handler class `base` (keeping whatever it adds, such as
    Odoo's logging of the proxied client address)."""

    class PollingHandler(*tuning(), base):  # type: ignore[misc, valid-type]
        def __init__(self, sock: Any, address: Any, server: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, address, server, *args, **kwargs)
            nodelay(sock)

        def get_environ(self) -> dict:
            environ = super().get_environ()
            environ[CLIENT_SOCKET] = self.socket
            return environ

        def handle_one_request(self) -> Any:
            gevent.sleep(0)
            return super().handle_one_request()

    PollingHandler.__name__ = PollingHandler.__qualname__ = "Polling" + base.__name__
    return PollingHandler
