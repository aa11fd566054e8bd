"""The standalone server's WSGI application: Odoo's long-polling routes over one database.

Routes (JSON-RPC like Odoo's): `POST /longpolling/poll`, `POST /longpolling/send`;
plus `GET /health`, the demo page at `/` and the addon's files under `/bus/static/`.
Only string channels come from clients, as in Odoo; what a poll or a send may carry is
checked here, before the dispatcher or the database sees it. The send route needs
`Authorization: Bearer <token>` when a token is set. A failure the caller did not cause
is logged with its traceback and answered as Odoo does, with the exception's name.
"""

import hmac
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from werkzeug.exceptions import Forbidden, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from . import jsonrpc, sender
from .dispatcher import Database, Dispatcher
from .gevent_handler import CLIENT_SOCKET
from .hangup import HangupWatch
from .jsonrpc import RpcError
from .options import MAX_BODY

_logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_CHANNELS = 1000  # string channels one poll may name
MAX_ID = 2**63 - 1
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
            call = jsonrpc.bind(method, request, **params)
            return jsonrpc.answer(call_id, method(*call.args, **call.kwargs))
        except RpcError as error:
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
                  "waiters": dispatcher.waiting, "reconnects": dispatcher.reconnects, "database": self.dbname,
                  "pid": os.getpid()}  # several workers may share the port
        return jsonrpc.json_response(status, 200 if dispatcher.listening else 503)

    def on_index(self, request: Request) -> Response:
        return send_from_directory(STATIC / "demo", "index.html", request.environ)

    def on_static(self, request: Request, path: str) -> Response:
        return send_from_directory(STATIC, path, request.environ)
