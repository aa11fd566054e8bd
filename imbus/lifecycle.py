"""One standalone server process, from start to a clean stop.

`serve()` runs until SIGINT or SIGTERM in a gevent-patched process (`python -m imbus
serve` patches it first); `python -m imbus serve --workers N` runs it in each worker
(`imbus/workers.py`). What it does, in order:

- raises the open-files limit to the hard limit (each waiting poll is a socket) and
  listens with TCP_NODELAY (without it each keep-alive answer waits ~40 ms for the
  client's delayed ACK); with `reuse_port`, on a port several workers share;
- starts the dispatcher (one LISTEN connection) and the table GC: every `gc_period`
  seconds (`--gc-period`, 60 by default) rows older than 100 s by the database's clock
  are deleted; a failure is logged as a warning
  ("bus: garbage collection failed") and retried next period;
- keeps Python's cyclic garbage collector off the hot path (`_tune_garbage_collector`);
- calls `ready(port)` once it accepts connections (by default it prints
  `imbus: serving http://HOST:PORT/ database DSN`, which scripts may wait for);
- on SIGINT/SIGTERM logs "bus: stopping", stops accepting, answers every waiting poll
  (empty), gives requests 5 s to finish and closes its database connections.
"""

import gc
import logging
import signal
import socket
from typing import Callable, Optional

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIHandler, WSGIServer

from . import store
from .app import BusApp
from .db import Pools
from .dispatcher import Dispatcher
from .filelimit import raise_file_limit
from .gevent_handler import polling_handler
from .options import Options

_logger = logging.getLogger(__name__)

def serve(options: Options, ready: Optional[Callable[[int], None]] = None, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM (gevent must already have patched the process)."""
    database = Pools(options.dsn, options.listen_dsn)
    dispatcher = Dispatcher(database)
    dispatcher.start()
    app = BusApp(dispatcher, database, database.dbname, options.send_token, options.max_body)
    server = WSGIServer(_listener(options.host, options.port, reuse_port), app, log=None,
                        handler_class=polling_handler(WSGIHandler))
    collector = gevent.spawn(_collect_garbage, database, options.gc_period)
    stopping = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    _tune_garbage_collector()
    server.start()
    (ready or _announce(options))(server.server_port)
    try:
        stopping.wait()
    finally:
        _logger.info("bus: stopping")
        server.close()  # no new connections
        dispatcher.stop()  # waiting polls answer now
        server.stop(timeout=5)
        collector.kill()
        with gevent.Timeout(5, False):  # a connection a killed request still held can block closeall
            database.close()


def _announce(options: Options) -> Callable[[int], None]:
    def announce(port: int) -> None:
        print(f"imbus: serving http://{options.host}:{port}/ database {options.dsn}", flush=True)

    return announce


def _tune_garbage_collector() -> None:
    """Keep Python's cyclic collector off the hot path. With its default thresholds it
    walked the objects of every waiting poll again and again: 40% of the CPU of a
    broadcast to 10,000 pollers. A request leaves no cycle behind (see `BusApp.__call__`),
    so refcounting frees it and rare collections are enough. Start-up objects are frozen
    out of every walk."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _listener(host: str, port: int, reuse_port: bool) -> socket.socket:
    raise_file_limit()
    sock = socket.create_server((host, port), backlog=4096, reuse_port=reuse_port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _collect_garbage(database: Pools, period: float) -> None:
    while True:
        gevent.sleep(period)
        try:
            with database.cursor(database.dbname) as cr:
                store.gc(cr)
        except Exception:
            _logger.warning("bus: garbage collection failed", exc_info=True)
