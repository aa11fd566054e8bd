"""The standalone server: Odoo's long-polling routes over one PostgreSQL database.

Routes (JSON-RPC like Odoo's): `POST /longpolling/poll`, `POST /longpolling/send`;
plus `GET /health`, the demo page at `/` and the addon's files under `/bus/static/`.
Only string channels come from clients, as in Odoo. The send route is open on a
loopback address and needs `Authorization: Bearer <token>` when a token is set.
"""

import gc
import hmac
import io
import logging
import re
import resource
import socket
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import psycopg2
from werkzeug.exceptions import Forbidden, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from . import jsonrpc, sender, store
from .db import Pools
from .dispatcher import Database, Dispatcher
from .embedded import EmbeddedPostgres
from .hangup import HangupWatch
from .jsonrpc import RpcError

_logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_BODY = 1024 * 1024  # bytes of a request body
MAX_CHANNELS = 1000  # string channels one poll may name
MAX_ID = 2**63 - 1
CLIENT_SOCKET = "imbus.client_socket"  # environ key of the connection, to notice a hang-up
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Authorization", "Access-Control-Max-Age": "86400"}


class BusApp:
    """The WSGI application; `dispatcher` waits, `database` stores sends."""

    def __init__(self, dispatcher: Dispatcher, database: Database, dbname: str,
                 send_token: Optional[str] = None, max_body: int = MAX_BODY) -> None:
        self.dispatcher = dispatcher
        self.database = database
        self.dbname = dbname
        self.send_token = send_token
        self.max_body = max_body
        self.routes = Map([
            Rule("/longpolling/poll", endpoint=self.on_poll, methods=["POST", "OPTIONS"]),
            Rule("/longpolling/send", endpoint=self.on_send, methods=["POST"]),
            Rule("/health", endpoint=self.on_health, methods=["GET"]),
            Rule("/", endpoint=self.on_index, methods=["GET"]),
            Rule("/bus/static/<path:path>", endpoint=self.on_static, methods=["GET"]),
        ])

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ, populate_request=False)  # no request <-> environ cycle: refcounting frees both
        request.max_content_length = self.max_body + 1  # reading one byte more tells a chunked body is too big
        try:
            if environ["PATH_INFO"] == "/longpolling/poll" and environ["REQUEST_METHOD"] == "POST":
                response = self.on_poll(request)  # every waiting browser comes here: skip the routing
            else:
                endpoint, args = self.routes.bind_to_environ(environ).match()
                response = endpoint(request, **args)
        except HTTPException as error:
            response = error.get_response(environ)
        return response(environ, start_response)

    def rpc(self, request: Request, method: Callable[..., Any]) -> Response:
        call_id = None
        try:
            if self._too_big(request):
                raise RpcError(f"Request body over {self.max_body} bytes",
                               "werkzeug.exceptions.RequestEntityTooLarge", 413)
            call_id, params = jsonrpc.parse(request)
            return jsonrpc.answer(call_id, method(request, **params))
        except RpcError as error:
            return jsonrpc.fail(call_id, error)
        except TypeError as error:  # missing or unexpected params
            return jsonrpc.fail(call_id, error)
        except HTTPException as error:
            return jsonrpc.fail(call_id, RpcError(error.description or error.name,
                                                  f"werkzeug.exceptions.{type(error).__name__}",
                                                  error.code or 400))
        except Exception as error:
            _logger.exception("bus: %s failed", request.path)
            return jsonrpc.fail(call_id, RpcError(str(error), jsonrpc.qualified_name(error)))

    def _too_big(self, request: Request) -> bool:
        """Whether the body is over `max_body`: by its Content-Length, or for a chunked body
        by reading it (werkzeug cuts an unannounced body at the limit without a word)."""
        if request.content_length is not None:
            return request.content_length > self.max_body
        return len(request.get_data()) > self.max_body

    # -- routes ---------------------------------------------------------------

    def on_poll(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status=200, headers=CORS)
        response = self.rpc(request, self.poll)
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def poll(self, request: Request, channels: Any, last: Any = 0, options: Any = None) -> Any:
        if not isinstance(channels, list):
            raise RpcError("bus.Bus channels must be a list of strings.")
        if any(not isinstance(channel, str) for channel in channels):
            raise RpcError("bus.Bus only string channels are allowed.")
        if len(channels) > MAX_CHANNELS:
            raise RpcError(f"bus.Bus polls at most {MAX_CHANNELS} channels.")
        if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= MAX_ID:
            raise RpcError("bus.Bus last must be a non-negative integer id.", "builtins.ValueError")
        if options is not None and not isinstance(options, dict):
            raise RpcError("bus.Bus options must be an object.", "builtins.TypeError")
        hangup = HangupWatch(request.environ.get(CLIENT_SOCKET))
        try:
            return self.dispatcher.poll(self.dbname, channels, last, options, watch=hangup.start)
        finally:
            hangup.stop()

    def on_send(self, request: Request) -> Response:
        if request.mimetype != "application/json":  # a cross-site page may POST text/plain without asking
            return jsonrpc.fail(None, RpcError("The send route takes application/json only",
                                               "werkzeug.exceptions.UnsupportedMediaType", 415))
        return self.rpc(request, self.send)

    def send(self, request: Request, channel: Any, message: Any) -> None:
        if self.send_token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                                       f"Bearer {self.send_token}".encode()):
            raise RpcError("Access Denied", "odoo.exceptions.AccessDenied", Forbidden.code)
        if not isinstance(channel, str):
            raise RpcError("bus.Bus only string channels are allowed.")
        sender.sendone(self.database, self.dbname, channel, message)

    def on_health(self, request: Request) -> Response:
        dispatcher = self.dispatcher
        status = {"status": "ok" if dispatcher.listening else "degraded", "listening": dispatcher.listening,
                  "waiters": dispatcher.waiting, "reconnects": dispatcher.reconnects, "database": self.dbname}
        return jsonrpc.json_response(status, 200 if dispatcher.listening else 503)

    def on_index(self, request: Request) -> Response:
        return send_from_directory(STATIC / "demo", "index.html", request.environ)

    def on_static(self, request: Request, path: str) -> Response:
        return send_from_directory(STATIC, path, request.environ)


def _handler_class() -> type:
    """gevent's request handler, also putting the client's socket in the environ, and
    reading plain request headers without the `email` package (see `read_headers`)."""
    import gevent
    from gevent.pywsgi import WSGIHandler

    class Handler(WSGIHandler):
        def MessageClass(self, fp: Any, *args: Any) -> Any:  # gevent calls it so
            return read_headers(fp)

        def get_environ(self) -> dict:
            environ = super().get_environ()
            environ[CLIENT_SOCKET] = self.socket
            return environ

        def handle_one_request(self) -> Any:
            """Let every poll a broadcast woke answer before reading the next request on
            this connection: its client's re-poll can wait, the others' answers cannot."""
            gevent.sleep(0)
            return super().handle_one_request()

        def _sendall(self, data: bytes) -> None:
            """One plain send when the answer fits the socket's buffer, as nearly all do:
            gevent's `sendall` first asks the kernel for the buffer's size, a system call
            per answer. The rest, and any error, goes through gevent."""
            try:
                sent = self.socket._sock.send(data)
            except OSError:
                sent = 0
            self.response_length += sent
            if sent < len(data):
                super()._sendall(memoryview(data)[sent:])

        def _write_with_headers(self, data: bytes) -> None:
            """Status line, headers and a small body in one send: gevent sends the
            headers and the body apart, two system calls and two segments per answer."""
            if len(data) > COALESCE:
                return super()._write_with_headers(data)
            parts: List[bytes] = []
            sendall = self._sendall
            self._sendall = parts.append  # collect what gevent would send
            try:
                super()._write_with_headers(data)
            finally:
                del self._sendall
            return sendall(b"".join(parts))

    return Handler


COALESCE = 64 * 1024  # bytes of body sent along with the headers
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
MAX_HEADER_LINE = 65536  # the limits of http.client, which gevent uses
MAX_HEADERS = 100


class PlainHeaders:
    """Request headers as gevent's handler reads them (`get`, `del`, `headers`, ...)."""

    __slots__ = ("fields", "status")

    def __init__(self, fields: List[Tuple[str, str]]) -> None:
        self.fields = fields
        self.status = ""

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        return next((value for key, value in self.fields if key.lower() == name), default)

    getheader = get

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self.fields = [(key, value) for key, value in self.fields if key.lower() != name]

    @property
    def headers(self) -> List[str]:
        return [f"{key}: {value}\r\n" for key, value in self.fields]

    @property
    def typeheader(self) -> Any:
        return self.get("content-type")


def read_headers(fp: Any) -> Any:
    """The request's headers. gevent parses them with http.client and the `email`
    package, a fifth of the CPU of a keep-alive poll; plain `Name: value` lines are read
    here instead, anything unusual (folding, odd names, limits) by the standard parser."""
    from gevent.pywsgi import headers_factory

    lines = []
    while True:
        line = fp.readline(MAX_HEADER_LINE + 1)
        lines.append(line)
        if line in (b"\r\n", b"\n", b""):
            break
        if len(line) > MAX_HEADER_LINE or len(lines) > MAX_HEADERS:
            return headers_factory(io.BytesIO(b"".join(lines)))
    fields = []
    for line in lines[:-1]:
        name, colon, value = line.decode("iso-8859-1").partition(":")
        if not colon or not HEADER_NAME.fullmatch(name):
            return headers_factory(io.BytesIO(b"".join(lines)))
        fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return PlainHeaders(fields)


# -- the process ------------------------------------------------------------------

GC_PERIOD = 60.0  # seconds between deletions of old rows, off the request path


def serve(dsn: Optional[str], listen_dsn: Optional[str], host: str, port: int, data_dir: Path,
          send_token: Optional[str], max_body: int = MAX_BODY, gc_period: float = GC_PERIOD) -> None:
    """Run until SIGINT/SIGTERM (gevent must already have patched the process)."""
    import signal

    import gevent
    from gevent.event import Event
    from gevent.pywsgi import WSGIServer

    embedded = None
    if not dsn:
        embedded, dsn = _embedded(data_dir)
    database = Pools(dsn, listen_dsn)
    with database.cursor(database.dbname) as cr:
        store.create_table(cr)
    dispatcher = Dispatcher(database)
    dispatcher.start()
    app = BusApp(dispatcher, database, database.dbname, send_token, max_body)
    server = WSGIServer(_listener(host, port), app, log=None, handler_class=_handler_class())
    collector = gevent.spawn(_collect_garbage, database, dispatcher, gc_period)
    stopping = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    _tune_garbage_collector()
    server.start()
    print(f"imbus: serving http://{host}:{server.server_port}/ database {dsn}", flush=True)
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
        if embedded is not None:
            embedded.stop()


def _tune_garbage_collector() -> None:
    """Keep Python's cyclic collector off the hot path. With its default thresholds it
    walked the objects of every waiting poll again and again: 40% of the CPU of a
    broadcast to 10,000 pollers. A request leaves no cycle behind (see `BusApp.__call__`),
    so refcounting frees it and rare collections are enough. Start-up objects are frozen
    out of every walk."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _embedded(data_dir: Path) -> Tuple[EmbeddedPostgres, str]:
    """Start (or reuse) the embedded cluster in `data_dir` with a database `imbus`."""
    cluster = EmbeddedPostgres(data_dir / "pg", _saved_port(data_dir))
    print(f"imbus: PostgreSQL data in {cluster.data_dir}", flush=True)
    cluster.start()
    (data_dir / "port").write_text(str(cluster.port))
    conn = psycopg2.connect(cluster.dsn())
    conn.autocommit = True
    with conn.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = 'imbus'")
        if not cr.fetchone():
            cr.execute("CREATE DATABASE imbus")
    conn.close()
    conn = psycopg2.connect(cluster.dsn("imbus"))
    conn.autocommit = True
    with conn.cursor() as cr:
        cr.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.close()
    return cluster, cluster.dsn("imbus")


def _saved_port(data_dir: Path) -> Optional[int]:
    path = data_dir / "port"
    return int(path.read_text()) if path.exists() else None


def _listener(host: str, port: int) -> socket.socket:
    """A listening socket whose connections send small answers at once: without
    TCP_NODELAY each keep-alive answer waits ~40 ms for the peer's delayed ACK."""
    _raise_file_limit()
    sock = socket.create_server((host, port), backlog=4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _raise_file_limit() -> None:
    """Each waiting poll is an open socket: allow as many as the system lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _collect_garbage(database: Pools, dispatcher: Dispatcher, period: float = GC_PERIOD) -> None:
    import gevent

    while True:
        gevent.sleep(period)
        try:
            with database.cursor(database.dbname) as cr:
                store.gc(cr)
        except Exception:
            _logger.warning("bus: garbage collection failed", exc_info=True)
