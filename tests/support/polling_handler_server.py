"""A bare gevent WSGIServer with `imbus.gevent_handler.polling_handler` (or gevent's own
handler with `--plain`), for tests/core/test_gevent_handler.py. Prints its port.

Routes: /nodelay (TCP_NODELAY of the accepted socket), /wait (waits up to 30 s, watched
by HangupWatch), /state (how the last /wait ended), anything else: a small answer."""

import gevent.monkey

gevent.monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from imbus.dispatcher import Waiter  # noqa: E402
from imbus.gevent_handler import CLIENT_SOCKET, polling_handler  # noqa: E402
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


if __name__ == "__main__":
    handler = WSGIHandler if "--plain" in sys.argv else polling_handler(WSGIHandler)
    server = WSGIServer(("127.0.0.1", 0), app, handler_class=handler, log=None)
    server.start()
    print(server.server_port, flush=True)
    server.serve_forever()
