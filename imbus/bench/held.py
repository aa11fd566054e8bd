"""`python -m imbus.bench.held`: what one held poll costs a gevent server, at the least.

A bare gevent WSGI server with the bus's handler (`imbus.gevent_handler`) whose
application only reads the JSON body and waits on a `Waiter` watched for hang-ups, at
`--depth` extra Python frames: the floor under any long-polling server on this Python
and gevent, with no application state. The client opens `--polls` keep-alive
connections, each sending one poll, and the server's RSS is read before and after.

  .venv37/bin/python -m imbus.bench.held --polls 5000 --depth 0 20   # Odoo 14's Python and pins

Each frame a parked greenlet holds costs its saved C stack (CPython before 3.11 runs
every Python call on the C stack): compare the depths.
"""

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
from typing import Any, Callable

from ..filelimit import raise_file_limit

HOLD = 120.0  # seconds a poll waits; longer than a run


def serve(depth: int) -> None:
    import gevent.monkey

    gevent.monkey.patch_all()
    from gevent.pywsgi import WSGIHandler, WSGIServer

    from ..dispatcher import Waiter
    from ..gevent_handler import CLIENT_SOCKET, polling_handler
    from ..hangup import HangupWatch

    def nested(levels: int, wait: Callable[[], Any]) -> Any:
        return wait() if levels == 0 else nested(levels - 1, wait)

    def app(environ: dict, start_response: Callable) -> Any:
        if environ["PATH_INFO"] == "/rss":
            with open("/proc/self/statm") as statm:
                body = str(int(statm.read().split()[1]) * resource.getpagesize()).encode()
        else:
            message = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
            waiter = Waiter("db", frozenset(message["params"]["channels"]))
            watch = HangupWatch(environ.get(CLIENT_SOCKET))
            watch.start(waiter)
            try:
                nested(depth, lambda: waiter.event.wait(HOLD))
            finally:
                watch.stop()
            body = json.dumps({"jsonrpc": "2.0", "id": message.get("id"), "result": []}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = WSGIServer(("127.0.0.1", 0), app, handler_class=polling_handler(WSGIHandler), log=None)
    server.start()
    print(server.server_port, flush=True)
    server.serve_forever()


def rss(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /rss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        chunk = sock.recv(65536)
        while chunk:
            answer += chunk
            chunk = sock.recv(65536)
    return int(answer.partition(b"\r\n\r\n")[2])


def measure(polls: int, depth: int) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "imbus.bench.held", "--serve", str(depth)],
                              stdout=subprocess.PIPE, text=True)
    sockets = []
    try:
        port = int(server.stdout.readline())
        before = rss(port)
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                           "params": {"channels": ["held"], "last": 0, "options": {}}}).encode()
        request = (b"POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body
        for _ in range(polls):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(request)
            sockets.append(sock)
        time.sleep(2)  # let the server read the last requests
        after = rss(port)
    finally:
        for sock in sockets:
            sock.close()
        server.kill()
        server.wait()
    return {"python": "{}.{}".format(*sys.version_info[:2]), "polls": polls, "depth": depth,
            "rss_before_mb": round(before / 2**20, 1), "rss_held_mb": round(after / 2**20, 1),
            "kb_per_poll": round((after - before) / 1024 / polls, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m imbus.bench.held", description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=5000)
    parser.add_argument("--depth", type=int, nargs="+", default=[0, 20])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    raise_file_limit()  # inherited by the server: one socket per poll on both sides
    for depth in args.depth:
        print(json.dumps(measure(args.polls, depth)))


if __name__ == "__main__":
    main()
