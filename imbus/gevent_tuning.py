"""Overrides of gevent's private handler internals, kept for what they save.

Checked against the gevent versions in `CHECKED_WITH` (1.5.0 is what Odoo 14 pins; the
three methods are the same there); `tests/core/test_gevent_tuning.py` fails on any
other, or if what is overridden here moved, and checks the answers byte for byte
against gevent's own handler, on both. Used through `imbus/gevent_handler.py` by the
standalone server and by Odoo's long-polling process; on an unchecked gevent that
handler goes without them.

Measured with `python -m imbus.bench broadcast --pollers 5000 --messages 5` against a
standalone server, with and without these classes, three rounds alternated (2026-12-02,
load 0.2-1.0 on 2 cores): server CPU per broadcast 2.10-2.34 s with, 2.46-3.03 s
without (about a fifth less); last poller 0.83-1.24 s with, 1.01-2.12 s without. With
`--pollers 10000`, two rounds (load 1.2-2.0): 3.96-4.36 s against 5.14-6.23 s of CPU.
`pingpong` is the same either way (p50 ~3 ms: the send, not the handler, dominates).
"""

import io
import re
from typing import Any, List, Tuple

import gevent
from gevent.pywsgi import WSGIHandler, headers_factory

CHECKED_WITH = ("1.5.0", "26.9.0")  # gevent versions these overrides were read and measured against


class PlainHeaderReader(WSGIHandler):
    """Reads plain `Name: value` request headers directly: gevent parses them with
    http.client and the `email` package, a fifth of the CPU of a keep-alive poll."""

    def MessageClass(self, fp: Any, *args: Any) -> Any:  # gevent calls it so
        return read_headers(fp)


class DirectSend(WSGIHandler):
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


class OneSendAnswers(WSGIHandler):
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


def tuning() -> Tuple[type, ...]:
    """The classes above, to put before a handler class in its bases; none on a gevent
    they were not checked against."""
    if gevent.__version__ not in CHECKED_WITH:
        return ()
    return (PlainHeaderReader, OneSendAnswers, DirectSend)
