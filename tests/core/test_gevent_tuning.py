"""imbus/gevent_tuning.py overrides private parts of gevent's WSGIHandler. These tests
fail when the installed gevent is not one the overrides were checked against, or when
what they rely on moved; and the tuned handler must answer byte for byte as gevent's
own does: on the gevent of the standalone server and on Odoo 14's (1.5.0, in the
Python 3.7 run of tests/compat), through the handler the fast path gives Odoo's
long-polling process."""

import _socket
import inspect
import re

import gevent
import gevent.pywsgi
import gevent.socket
from gevent.pywsgi import WSGIHandler, WSGIServer

from imbus import gevent_tuning
from imbus.gevent_handler import polling_handler


def parameters(function):
    return [(each.name, each.kind) for each in inspect.signature(function).parameters.values()]


def calls(function, *snippets):
    source = inspect.getsource(function)
    return all(snippet in source for snippet in snippets)


POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_the_installed_gevent_is_one_the_overrides_were_checked_against():
    assert gevent.__version__ in gevent_tuning.CHECKED_WITH, (
        f"gevent {gevent.__version__}: check imbus/gevent_tuning.py against it (these tests, the bench), "
        "then add it to CHECKED_WITH")


def test_gevent_still_reads_headers_through_message_class():
    assert parameters(WSGIHandler.MessageClass) == [("self", POSITIONAL), ("args", inspect.Parameter.VAR_POSITIONAL)]
    assert calls(WSGIHandler.read_request, "self.MessageClass(self.rfile, 0)")
    assert callable(gevent.pywsgi.headers_factory)  # the standard parser odd headers go to


def test_plain_headers_have_everything_gevent_uses_of_its_headers():
    source = inspect.getsource(WSGIHandler)
    used = set(re.findall(r"self\.headers\.(\w+)", source))
    assert used <= set(dir(gevent_tuning.PlainHeaders)), used - set(dir(gevent_tuning.PlainHeaders))
    assert "del self.headers[" in source and hasattr(gevent_tuning.PlainHeaders, "__delitem__")


def test_gevent_still_sends_through_sendall_and_write_with_headers():
    for name in ("_sendall", "_write_with_headers", "_write"):
        assert parameters(getattr(WSGIHandler, name))[:2] == [("self", POSITIONAL), ("data", POSITIONAL)], name
    assert calls(WSGIHandler._sendall, "self.socket.sendall(data)", "self.response_length += len(data)")
    assert calls(WSGIHandler._write_with_headers, "self._sendall(towrite)", "self._write(data)")
    assert calls(WSGIHandler._write, "self._sendall(")
    assert calls(WSGIHandler.write, "self._write_with_headers(data)")


def test_gevent_sockets_still_wrap_a_plain_socket_as_sock():
    with gevent.socket.socket() as sock:
        assert isinstance(sock._sock, _socket.socket)  # what DirectSend sends on, bypassing the hub


def app(environ, start_response):
    """Echoes the request's headers and body; `/big` answers past the one-send size,
    `/chunked` without a length."""
    body = environ["wsgi.input"].read()
    seen = sorted(f"{key}={value}" for key, value in environ.items() if key.startswith(("HTTP_", "CONTENT_")))
    answer = "\n".join(seen).encode() + b"\n" + body
    path = environ["PATH_INFO"]
    if path == "/big":
        answer *= gevent_tuning.COALESCE // len(answer) + 2
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [answer, b"second part"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
    b"Connection: close\r\n\r\n{\"a\":1}",
    b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /folded HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n",
    b"GET /spaces HTTP/1.1\r\nHost: x\r\nX-Padded:   v  \r\nX-Empty:\r\nConnection: close\r\n\r\n",
    b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\nGET /then HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"GET /bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBad Name: x\r\n\r\n",
]


def exchange(port, raw):
    """Send `raw`, read until the server closes; the Date headers blanked."""
    with gevent.socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        chunk = sock.recv(65536)
        while chunk:
            answer += chunk
            chunk = sock.recv(65536)
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", answer)


def test_the_polling_handler_is_tuned():
    assert set(gevent_tuning.tuning()) < set(polling_handler(WSGIHandler).__mro__)


def test_the_tuned_handler_answers_byte_for_byte_as_gevents_own():
    tuned = polling_handler(WSGIHandler)
    servers = [WSGIServer(("127.0.0.1", 0), app, log=None, handler_class=handler) for handler in (tuned, WSGIHandler)]
    for server in servers:
        server.start()
    try:
        for raw in REQUESTS:
            tuned, plain = (exchange(server.server_port, raw) for server in servers)
            assert tuned == plain, raw
            assert plain.startswith(b"HTTP/1."), raw
    finally:
        for server in servers:
            server.stop(timeout=1)
