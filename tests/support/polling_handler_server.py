"""A bare gevent WSGIServer with `imbus.gevent_handler.polling_handler` (or gevent's own
handler with `--plain`), for tests/core/test_gevent_handler.py. Prints its port.
With `--late` it starts with gevent's handler and installs the polling one during its
first request, calling `adopt` on every request, as the fast path does inside Odoo.

Routes: /nodelay (TCP_NODELAY of the accepted socket), /wait (waits up to 30 s, watched
by HangupWatch), /state (how the last /wait ended), anything else: a small answer."""

import gevent.monkey

gevent.monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from imbus.dispatcher import Waiter  # noqa: E402
from imbus.gevent_handler import CLIENT_SOCKET, adopt, polling_handler  # noqa: E402
from imbus.hangup import HangupWatch  # noqa: E402

state = {"waits": 0, "ended": None}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    sock = environ.get(CLIENT_SOCKET)
    if path == "/nodelay":
        answer = {"nodelay": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) if sock else None}
    elif path == "/wait":
        state["waits"] += 1
        waiter = Waiter("db", frozenset())
        watch = HangupWatch(sock)
        watch.start(waiter)
        try:
            woken = waiter.event.wait(30)
        finally:
            watch.stop()
        state["ended"] = "cancelled" if waiter.cancelled else ("woken" if woken else "timeout")
        answer = state
    elif path == "/state":
        answer = state
    else:
        answer = {"ok": True}
    body = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def late_app(environ, start_response):
    server.handler_class = polling_handler(WSGIHandler)
    adopt(environ)
    return app(environ, start_response)


if __name__ == "__main__":
    late = "--late" in sys.argv
    handler = WSGIHandler if "--plain" in sys.argv or late else polling_handler(WSGIHandler)
    server = WSGIServer(("127.0.0.1", 0), late_app if late else app, handler_class=handler, log=None)
    server.start()
    print(server.server_port, flush=True)
    server.serve_forever()
