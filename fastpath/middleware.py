"""The WSGI middleware in front of Odoo in the gevent process: polls wait outside Odoo.

`POST /longpolling/poll` with a JSON-RPC body:
- its poll key (`imbus.poll_cache.poll_key`: session, host, client address, the
  client's channels and options) has a live entry, the session store still holds that
  session with the same database, user and token (`sessions`), and the database's
  registry is the one the entry was resolved under: answered here. Presence noted for
  the batch writer, `dispatch.poll` on the entry's final channels, Odoo's envelope
  with the headers Odoo gave that key's answer. No cursor, no Odoo dispatch.
- otherwise it goes through the gate into Odoo, carrying a `SlowPoll` in the environ.
  The bus controller's `_poll`, once the overrides resolved the channels and the
  presence is written, records the entry and hands the wait back (`odoo_poll`): Odoo's
  request ends, cursor and all, and the poll waits here, a few calls deep instead of
  inside Odoo's request (on Python 3.7 each frame a parked greenlet holds is ~1.1 KB
  of saved C stack; Odoo's are dozens, with their objects). Its answer keeps the
  status and headers of Odoo's, cookie included, with the notifications as the body.
`POST /longpolling/send` from a known session: `send.FastSend`.
`GET /longpolling/health`: the dispatcher's and the fast path's counters.
Everything else goes into Odoo through the gate, untouched.

Because the channels come from Odoo and the wait from here, a `_poll` override that
changed what `super()._poll` returned would see an empty list; the addons of Odoo 14
only add channels before calling it.
"""

import json
import time
from typing import Any, Callable, Dict, List, Optional

import odoo
from odoo.modules.registry import Registry

from ..imbus.gate import Gate
from ..imbus.gevent_handler import CLIENT_SOCKET, adopt
from ..imbus.hangup import HangupWatch
from ..imbus.poll_cache import Entry, PollCache, last_id, poll_key
from ..imbus.presence import PresenceBuffer
from .replies import Call, origin, read_call, reply, without
from .send import FastSend
from .sessions import Sessions

SLOW_POLL = 'bus.fastpath.slow_poll'  # environ key: the SlowPoll of a poll going through Odoo
SLOT = 'bus.fastpath.slot'  # environ key: the request's place in the gate


class Basis:
    """What an entry was resolved under, checked before each fast answer."""

    __slots__ = ('registry_sequence', 'token')

    def __init__(self, token: Any, registry_sequence: Any) -> None:
        self.token = token
        self.registry_sequence = registry_sequence


class SlowPoll:
    """A poll Odoo resolves: `_poll` records its entry and leaves the wait to `FastPath`."""

    __slots__ = ('call', 'entry', 'fastpath', 'key', 'wait')

    def __init__(self, fastpath: 'FastPath', call: Call, key: Optional[str]) -> None:
        self.fastpath = fastpath
        self.call = call
        self.key = key
        self.entry: Optional[Entry] = None
        self.wait: Optional[tuple] = None  # (dbname, channels, last, options) once Odoo resolved them

    def record(self, dbname: str, session: Any, registry: Any, channels: List[Any]) -> None:
        if self.key is None or session.sid != self.call.sid:
            return  # no session, or a new or rotated one: its next poll has another key
        basis = Basis(session.session_token, registry.registry_sequence)
        self.entry = self.fastpath.cache.record(
            self.key, dbname, session.uid, channels, self.call.params['channels'], basis, session.sid)


class FastPath:
    def __init__(self, app: Callable, dispatch: Any, gate: Gate) -> None:
        self.app = app
        self.dispatch = dispatch
        self.gate = gate
        self.cache = PollCache()
        self.presence = PresenceBuffer()
        self.sessions = Sessions(odoo.http.root.session_store)
        self.sender = FastSend(dispatch.database)
        # polls answered here, polls and other requests sent to Odoo, entries made usable, sends done here
        self.counts: Dict[str, int] = {'fast': 0, 'slow': 0, 'other': 0, 'recorded': 0, 'sent': 0}

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        adopt(environ)  # a connection accepted before `install`: TCP_NODELAY, hang-up watch
        path, method = environ.get('PATH_INFO'), environ.get('REQUEST_METHOD')
        if method == 'POST' and path in ('/longpolling/poll', '/longpolling/send'):
            call = read_call(environ)
            if call is not None and path == '/longpolling/poll':
                return self.poll(call, environ, start_response)
            if call is not None:
                entry = self.cache.of_session(call.sid)
                if entry is not None and self.usable(entry, call.sid) \
                        and self.sender.accepts(call, entry.dbname, entry.uid):
                    self.counts['sent'] += 1
                    return self.sender.answer(call, entry.dbname, entry.uid, start_response)
        elif method == 'GET' and path == '/longpolling/health':
            return self.health(start_response)
        self.counts['other'] += 1
        with self.gate.enter() as environ[SLOT]:
            return self.app(environ, start_response)

    def poll(self, call: Call, environ: dict, start_response: Callable) -> Any:
        key = poll_key(call.params, call.sid, [*origin(environ), call.explicit])
        entry = self.cache.get(key)
        if entry is not None and self.usable(entry, call.sid):
            self.counts['fast'] += 1
            return self.answer(entry, call, environ, start_response)
        self.counts['slow'] += 1
        slow = environ[SLOW_POLL] = SlowPoll(self, call, key)
        answer: List[Any] = []

        def start(status: str, headers: List[Any], exc_info: Any = None) -> Any:
            if slow.wait is None:  # Odoo answered the poll itself (an error)
                return start_response(status, headers, exc_info)
            answer[:] = [status, headers]
            return lambda data: None  # Odoo's body is replaced by the notifications

        with self.gate.enter() as environ[SLOT]:
            body = self.app(environ, start)
        if slow.wait is None:
            return body
        status, headers = answer
        if not status.startswith('200'):  # Odoo failed after `_poll`: its answer stands
            start_response(status, headers)
            return body
        if hasattr(body, 'close'):
            body.close()
        del body
        environ.pop('werkzeug.request', None)  # Odoo's request and session: not kept for the wait
        headers = without(headers, 'content-length')
        if slow.entry is not None:
            self.cache.complete(slow.entry, without(headers, 'set-cookie'))
            self.counts['recorded'] += 1
        return reply(call, lambda: self.wait(slow.entry, environ, *slow.wait), start_response, headers,
                     status, cookie=False)

    def usable(self, entry: Entry, sid: str) -> bool:
        """Whether Odoo would still resolve this session as it did: same registry, and the
        session store still holds the session with the same database, user and token."""
        registry = Registry.registries.get(entry.dbname)
        basis = entry.extra
        if registry is None or registry.registry_sequence != basis.registry_sequence or registry.in_test_mode():
            self.cache.drop(entry)
            return False
        if self.sessions.basis(sid) != (entry.dbname, entry.uid, basis.token):
            self.cache.drop(entry)
            return False
        return True

    def answer(self, entry: Entry, call: Call, environ: dict, start_response: Callable) -> Any:
        options = call.params.get('options') or {}
        inactivity = options.get('bus_inactivity')
        if entry.uid and isinstance(inactivity, (int, float)) and not isinstance(inactivity, bool):
            self.presence.record(entry.dbname, entry.uid, inactivity)
        last = last_id(call.params.get('last'))
        return reply(call, lambda: self.wait(entry, environ, entry.dbname, entry.channels, last, options),
                     start_response, entry.headers)

    def wait(self, entry: Optional[Entry], environ: dict, dbname: str, channels: List[Any], last: int,
             options: dict) -> Any:
        """The poll's wait; an entry whose poll heard its user's private channel is
        dropped (see `PollCache`)."""
        result = watched_poll(self.dispatch, environ, dbname, channels, last, options)
        if entry is not None:
            self.cache.answered(entry, result)
        return result

    def health(self, start_response: Callable) -> Any:
        status = {
            'listening': self.dispatch.listening, 'waiting': self.dispatch.waiting,
            'entries': len(self.cache), **self.counts,
            'gate': {'limit': self.gate.limit, 'inside': self.gate.inside, 'queued': self.gate.queued},
            'time': time.time(),
        }
        body = json.dumps(status).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
        return [body]


def odoo_poll(dispatch: Any, request: Any, dbname: str, channels: List[Any], last: int, options: dict) -> Any:
    """The end of the bus controller's `_poll`, once Odoo resolved the channels and the
    request gave its cursor back. Behind the fast path: leave the gate, record the
    entry, hand the wait to the middleware (the route's answer is then discarded).
    Threaded Odoo: wait here, hang-up watched if the server gave the socket."""
    environ = request.httprequest.environ
    slow = environ.get(SLOW_POLL)
    if slow is None:
        return watched_poll(dispatch, environ, dbname, channels, last, options)
    environ[SLOT].release()
    slow.record(dbname, request.session, request.registry, channels)
    slow.wait = (dbname, channels, last, options)
    return []


def watched_poll(dispatch: Any, environ: dict, dbname: str, channels: List[Any], last: int, options: dict) -> Any:
    """`dispatch.poll`, ended at once if the client's socket hangs up meanwhile."""
    hangup = HangupWatch(environ.get(CLIENT_SOCKET))
    try:
        return dispatch.poll(dbname, channels, last, options, watch=hangup.start)
    finally:
        hangup.stop()
