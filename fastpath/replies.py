"""JSON-RPC calls read from the WSGI environ, and answers made as Odoo makes them.

The fast path reads a call before Odoo does (the body is put back for Odoo), and
answers it the way Odoo's `type='json'` routes do: the `{"jsonrpc", "id", "result"}`
envelope (no `result` for None), an error as Odoo's `{"code": 200, "message": "Odoo
Server Error", "data": ...}`, and the `session_id` cookie renewed as Odoo renews it
when the session came by cookie. The bytes are made here, without a werkzeug Response.
"""

import io
import json
import logging
from typing import Any, Callable, List, Optional

from odoo.http import serialize_exception
from odoo.tools import date_utils
from werkzeug.http import dump_cookie, parse_cookie, parse_options_header
from werkzeug.urls import url_decode

_logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bigger bodies go to Odoo untouched
COOKIE_AGE = 90 * 24 * 60 * 60  # what Odoo gives its session cookie
JSON_TYPES = ('application/json', 'application/json-rpc')
JSON_HEADERS = [('Content-Type', 'application/json')]  # Odoo's `type='json'` answer, before its length
ORIGIN = ('HTTP_HOST', 'REMOTE_ADDR', 'HTTP_X_FORWARDED_HOST', 'HTTP_X_FORWARDED_FOR')


class Call:
    """A JSON-RPC call as read from the environ, before Odoo sees it."""

    __slots__ = ('explicit', 'id', 'params', 'sid')

    def __init__(self, message: dict, sid: Optional[str], explicit: bool) -> None:
        self.id = message.get('id')
        self.params = message['params']
        self.sid = sid
        self.explicit = explicit  # the session came by query string or header: no cookie


def read_call(environ: dict) -> Optional[Call]:
    """The call in `environ`, its body put back for Odoo to read again; None when Odoo
    alone should judge it (not JSON, too big, not an object with object params)."""
    mimetype, type_options = parse_options_header(environ.get('CONTENT_TYPE', ''))
    if mimetype not in JSON_TYPES or type_options.get('charset', 'utf-8').lower() != 'utf-8':
        return None
    try:
        length = int(environ.get('CONTENT_LENGTH') or '')
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    body = environ['wsgi.input'].read(length)
    environ['wsgi.input'] = io.BytesIO(body)
    try:
        message = json.loads(body.decode())
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get('params'), dict):
        return None
    # the session as Odoo's `setup_session` finds it: query string, header, then cookie
    sid = url_decode(environ['QUERY_STRING']).get('session_id') if environ.get('QUERY_STRING') else None
    explicit = True
    if not sid:
        sid = environ.get('HTTP_X_OPENERP_SESSION_ID')
    if not sid:
        sid = parse_cookie(environ).get('session_id')
        explicit = False
    return Call(message, sid, explicit)


def origin(environ: dict) -> List[Any]:
    """What else than the session Odoo's answer may depend on: host and client address."""
    return [environ.get(name) for name in ORIGIN]


def reply(call: Call, run: Callable[[], Any], start_response: Callable, headers: List[Any],
          status: str = '200 OK', cookie: bool = True) -> List[bytes]:
    """Answer `call` with what `run()` returns, or Odoo's error object if it raises.
    `headers` come without length; the session cookie is added unless the session came
    explicitly or `cookie` is False (Odoo's own answer set it already)."""
    envelope = {'jsonrpc': '2.0', 'id': call.id}
    try:
        result = run()
    except Exception as error:
        _logger.exception("bus: a call answered by the fast path failed")
        envelope['error'] = {'code': 200, 'message': "Odoo Server Error", 'data': serialize_exception(error)}
    else:
        if result is not None:
            envelope['result'] = result
    body = json.dumps(envelope, default=date_utils.json_default).encode()
    headers = [*headers, ('Content-Length', str(len(body)))]
    if cookie and not call.explicit:
        headers.append(('Set-Cookie', dump_cookie('session_id', call.sid, max_age=COOKIE_AGE, httponly=True)))
    start_response(status, headers)
    return [body]


def without(headers: List[Any], *names: str) -> List[Any]:
    return [(name, value) for name, value in headers if name.lower() not in names]
