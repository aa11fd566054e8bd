"""The WSGI middleware in front of Odoo in the gevent process: re-polls served from the core.

For `POST /longpolling/poll` with a session cookie (or header) and arguments the poll
route would accept, it computes the poll key (`imbus.poll_cache.poll_key`: session,
host, client address, the client's channels and options). When the cache holds a live
entry for it, and the session file still names the same database, user and session
token, and the database's registry is the one the entry was resolved under, the poll
is answered here: presence noted for the batch writer, `dispatch.poll` on the entry's
final channels, and Odoo's JSON-RPC envelope with the headers Odoo gave that session's
previous answer (the `session_id` cookie renewed as Odoo renews it). No cursor, no
Odoo dispatch. Everything else goes to Odoo through the gate; a poll that goes there
carries a `SlowPoll` in the environ, which the `_poll` of the bus controller fills in.

`GET /longpolling/health` answers the dispatcher's and the fast path's counters.
"""

import io
import json
import logging
import time
from typing import Any, Callable, Dict, List, Optional

import odoo
from odoo.http import serialize_exception
from odoo.modules.registry import Registry
from odoo.tools import date_utils
from werkzeug.http import parse_cookie, parse_options_header
from werkzeug.urls import url_decode
from werkzeug.wrappers import Response

from ..imbus.gate import Gate
from ..imbus.gevent_handler import CLIENT_SOCKET, adopt
from ..imbus.hangup import HangupWatch
from ..imbus.poll_cache import Entry, PollCache, last_id, poll_key
from ..imbus.presence import PresenceBuffer

_logger = logging.getLogger(__name__)

SLOW_POLL = 'bus.fastpath.slow_poll'  # environ key: the SlowPoll of a poll going through Odoo
SLOT = 'bus.fastpath.slot'  # environ key: the request's place in the gate
MAX_BODY = 1 << 20  # bigger poll bodies go to Odoo untouched
COOKIE_AGE = 90 * 24 * 60 * 60  # what Odoo gives its session cookie
JSON_TYPES = ('application/json', 'application/json-rpc')


class Basis:
    """What an entry was resolved under, checked before each fast answer."""

    __slots__ = ('registry_sequence', 'sid', 'token')

    def __init__(self, sid: str, token: Any, registry_sequence: Any) -> None:
        self.sid = sid
        self.token = token
        self.registry_sequence = registry_sequence


class PollRequest:
    """A poll as read from the WSGI environ, before Odoo sees it."""

    __slots__ = ('explicit', 'key', 'last', 'message', 'params', 'sid')

    def __init__(self, message: dict, sid: Optional[str], explicit: bool, origin: List[Any]) -> None:
        self.message = message
        self.params = message.get('params')
        self.sid = sid
        self.explicit = explicit
        self.key = poll_key(self.params, sid, [*origin, explicit])
        self.last = last_id(self.params.get('last')) if self.key else None


class SlowPoll:
    """A poll Odoo serves: `_poll` records its entry; its answer's headers complete it."""

    __slots__ = ('answered', 'entry', 'fastpath', 'request')

    def __init__(self, fastpath: 'FastPath', request: PollRequest) -> None:
        self.fastpath = fastpath
        self.request = request
        self.entry: Optional[Entry] = None
        self.answered = False

    def record(self, dbname: str, session: Any, registry: Any, channels: List[Any]) -> None:
        if session.sid != self.request.sid:
            return  # a new or rotated session: its next poll has another key
        basis = Basis(session.sid, session.session_token, registry.registry_sequence)
        self.entry = self.fastpath.cache.record(
            self.request.key, dbname, session.uid, channels, self.request.params['channels'], basis)

    def done(self, result: Any) -> None:
        self.answered = True
        if self.entry is not None:
            self.fastpath.cache.answered(self.entry, result)


class FastPath:
    def __init__(self, app: Callable, dispatch: Any, gate: Gate) -> None:
        self.app = app
        self.dispatch = dispatch
        self.gate = gate
        self.cache = PollCache()
        self.presence = PresenceBuffer()
        # polls answered here, polls and other requests sent to Odoo, entries made usable
        self.counts: Dict[str, int] = {'fast': 0, 'slow': 0, 'other': 0, 'recorded': 0}

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        adopt(environ)  # a connection accepted before `install`: TCP_NODELAY, hang-up watch
        path = environ.get('PATH_INFO')
        slow = None
        if path == '/longpolling/poll' and environ.get('REQUEST_METHOD') == 'POST':
            request = read_poll(environ)
            if request is not None and request.key is not None:
                entry = self.cache.get(request.key)
                if entry is not None and self.usable(entry, request):
                    self.counts['fast'] += 1
                    return self.answer(entry, request, environ, start_response)
                slow = environ[SLOW_POLL] = SlowPoll(self, request)
        elif path == '/longpolling/health' and environ.get('REQUEST_METHOD') == 'GET':
            return self.health(environ, start_response)
        slot = environ[SLOT] = self.gate.enter()
        self.counts['other' if slow is None else 'slow'] += 1
        with slot:
            if slow is None:
                return self.app(environ, start_response)
            return self.app(environ, self.completing(slow, start_response))

    def completing(self, slow: SlowPoll, start_response: Callable) -> Callable:
        def start(status: str, headers: List[Any], exc_info: Any = None) -> Any:
            if slow.entry is not None and slow.answered and status.startswith('200'):
                self.cache.complete(slow.entry, [(name, value) for name, value in headers
                                                 if name.lower() != 'set-cookie'])
                self.counts['recorded'] += 1
            return start_response(status, headers, exc_info)
        return start

    def usable(self, entry: Entry, request: PollRequest) -> bool:
        """Whether Odoo would still resolve this poll as it did: same registry, and the
        session store still holds the session with the same database, user and token."""
        registry = Registry.registries.get(entry.dbname)
        basis = entry.extra
        if registry is None or registry.registry_sequence != basis.registry_sequence or registry.in_test_mode():
            self.cache.drop(entry)
            return False
        session = odoo.http.root.session_store.get(request.sid)
        if (session.sid != request.sid or session.db != entry.dbname or session.uid != entry.uid
                or session.session_token != basis.token):
            self.cache.drop(entry)
            return False
        return True

    def answer(self, entry: Entry, request: PollRequest, environ: dict, start_response: Callable) -> Any:
        options = request.params.get('options') or {}
        inactivity = options.get('bus_inactivity')
        if entry.uid and isinstance(inactivity, (int, float)) and not isinstance(inactivity, bool):
            self.presence.record(entry.dbname, entry.uid, inactivity)
        envelope = {'jsonrpc': '2.0', 'id': request.message.get('id')}
        try:
            result = watched_poll(self.dispatch, environ, entry.dbname, entry.channels, request.last, options)
        except Exception as error:
            _logger.exception("bus: fast poll failed")
            envelope['error'] = {'code': 200, 'message': "Odoo Server Error", 'data': serialize_exception(error)}
        else:
            envelope['result'] = result
            self.cache.answered(entry, result)
        response = Response(json.dumps(envelope, default=date_utils.json_default), headers=entry.headers)
        if not request.explicit:
            response.set_cookie('session_id', request.sid, max_age=COOKIE_AGE, httponly=True)
        return response(environ, start_response)

    def health(self, environ: dict, start_response: Callable) -> Any:
        status = {
            'listening': self.dispatch.listening, 'waiting': self.dispatch.waiting,
            'entries': len(self.cache), **self.counts,
            'gate': {'limit': self.gate.limit, 'inside': self.gate.inside, 'queued': self.gate.queued},
            'time': time.time(),
        }
        return Response(json.dumps(status), mimetype='application/json')(environ, start_response)


def read_poll(environ: dict) -> Optional[PollRequest]:
    """The poll in `environ`, its body put back for Odoo to read again; None when Odoo
    alone should judge it (not JSON, too big, not an object)."""
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
    sid = url_decode(environ.get('QUERY_STRING', '')).get('session_id') if environ.get('QUERY_STRING') else None
    explicit = True
    if not sid:
        sid = environ.get('HTTP_X_OPENERP_SESSION_ID')
    if not sid:
        sid = parse_cookie(environ).get('session_id')
        explicit = False
    origin = [environ.get(name) for name in ('HTTP_HOST', 'REMOTE_ADDR', 'HTTP_X_FORWARDED_HOST',
                                             'HTTP_X_FORWARDED_FOR')]
    return PollRequest(message, sid, explicit, origin)


def odoo_poll(dispatch: Any, request: Any, dbname: str, channels: List[Any], last: int, options: dict) -> Any:
    """The wait at the end of the bus controller's `_poll`, once Odoo resolved the
    channels and the request gave its cursor back: leave the gate, record the entry
    (in the gevent process), wait with the client's hang-up watched."""
    environ = request.httprequest.environ
    slot = environ.get(SLOT)
    if slot is not None:
        slot.release()
    slow = environ.get(SLOW_POLL)
    if slow is not None:
        slow.record(dbname, request.session, request.registry, channels)
    result = watched_poll(dispatch, environ, dbname, channels, last, options)
    if slow is not None:
        slow.done(result)
    return result


def watched_poll(dispatch: Any, environ: dict, dbname: str, channels: List[Any], last: int, options: dict) -> Any:
    """`dispatch.poll`, ended at once if the client's socket hangs up meanwhile."""
    hangup = HangupWatch(environ.get(CLIENT_SOCKET))
    try:
        return dispatch.poll(dbname, channels, last, options, watch=hangup.start)
    finally:
        hangup.stop()
