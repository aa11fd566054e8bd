"""A minimal keep-alive HTTP/1.1 client on gevent sockets, cheap enough to hold
thousands of long-polls open from one process.

Browsers keep one connection per poller and reuse it for every poll; so does this.
It uses `gevent.socket` directly, so it cooperates even in a process that gevent has
not patched (the test suite).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from gevent import socket as gsocket

CONNECT_TIMEOUT = 10.0
CHUNK = 65536


class HttpError(Exception):
    """The server answered with a non-200 status, or the connection failed."""


class Response:
    __slots__ = ("body", "headers", "keep_alive", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, version: str = "HTTP/1.1") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        connection = headers.get("connection", "").lower()
        # HTTP/1.0 servers (Odoo's threaded werkzeug) close unless they say keep-alive
        self.keep_alive = connection == "keep-alive" or (version != "HTTP/1.0" and connection != "close")

    def json(self) -> Any:
        return json.loads(self.body)


def loopback_address(url: str) -> tuple[str, int]:
    """The (host, port) of `url`; refuses anything but a loopback address, since the
    bench opens thousands of connections and must never aim them elsewhere."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported: {url!r}")
    host = parts.hostname
    for info in socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise ValueError(f"the bench only drives loopback servers, not {host}")
    return host, parts.port or 80


class Connection:
    """One keep-alive connection; `post` sends a request and reads the whole answer."""

    def __init__(self, host: str, port: int, cookie: str | None = None) -> None:
        self.host = host
        self.port = port
        self.cookie = cookie
        self.sock: Any = None
        self.buffer = b""

    def open(self) -> None:
        self.sock = gsocket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
        if self.sock is None:
            self.open()
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            response = self._read_response()
        except OSError as error:
            self.close()
            raise HttpError(f"connection failed: {error}") from error
        if not response.keep_alive:
            self.close()
        return response

    def rpc(self, path: str, params: dict, call_id: int = 1, headers: dict[str, str] | None = None) -> dict:
        """A JSON-RPC call; returns the envelope (HttpError unless the status is 200)."""
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": call_id}).encode()
        response = self.post(path, body, headers)
        if response.status != 200:
            raise HttpError(f"HTTP {response.status} from {path}: {response.body[:200]!r}")
        return response.json()

    def _read_response(self) -> Response:
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, status = status_line.split(" ", 2)[:2]
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = (headers[name] + ", " if name in headers else "") + value.strip()
        if "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:
            body = self._read_to_end()
        return Response(int(status), headers, body, version)

    def _fill(self) -> None:
        data = self.sock.recv(CHUNK)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            self._fill()
        data, self.buffer = self.buffer[:end], self.buffer[end + len(marker):]
        return data

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_chunked(self) -> bytes:
        parts = []
        while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
            parts.append(self._read_exactly(size))
            self._read_until(b"\r\n")
        self._read_until(b"\r\n")  # no trailers expected
        return b"".join(parts)

    def _read_to_end(self) -> bytes:
        try:
            while True:
                self._fill()
        except ConnectionResetError:
            pass
        data, self.buffer = self.buffer, b""
        self.close()
        return data
