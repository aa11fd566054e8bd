"""gevent's WSGI request handler as the standalone server runs it.

Two additions through gevent's public handler API: the client's socket goes into the
environ (so a waiting poll notices its client hanging up, see `imbus/hangup.py`), and
each connection yields once before reading its next request. The speed-ups that reach
into gevent's private internals live in `imbus/gevent_tuning.py`.
"""

from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler

from .gevent_handler import CLIENT_SOCKET
from .gevent_tuning import DirectSend, OneSendAnswers, PlainHeaderReader


class Handler(PlainHeaderReader, OneSendAnswers, DirectSend, WSGIHandler):
    def get_environ(self) -> dict:
        environ = super().get_environ()
        environ[CLIENT_SOCKET] = self.socket
        return environ

    def handle_one_request(self) -> Any:
        """Let every poll a broadcast woke answer before reading the next request on
        this connection: its client's re-poll can wait, the others' answers cannot
        (the last of 10,000 pollers had its answer after 1.45 s without, 0.7 s with)."""
        gevent.sleep(0)
        return super().handle_one_request()
