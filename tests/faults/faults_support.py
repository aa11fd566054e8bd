"""Helpers of the fault tests: raw HTTP clients, clients that keep polling, probes.

Imported by name (`from faults_support import ...`); the fixtures live in this
folder's conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, ClassVar
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extensions

WAKE = "faults-wake"  # every Follower also listens here, so it can be told to stop


def health(url: str) -> dict:
    """GET /health, whether the server says ok (200) or degraded (503)."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def call(params: Any, call_id: Any = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": call_id}).encode()


def post(url: str, path: str, body: bytes, headers: dict | None = None, timeout: float = 10) -> tuple[int, Any]:
    """POST raw bytes; the status and the decoded JSON body (or the text)."""
    request = urllib.request.Request(url + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class RawRequest:
    """A POST over a bare socket, so a test can vanish in the middle of it."""

    def __init__(self, url: str, path: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.sock.sendall(head.encode() + body)

    def reset(self) -> None:
        """Vanish with a TCP reset (SO_LINGER 0), as a crashed browser or a NAT drop does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def hang_up(self) -> None:
        """Vanish politely (FIN), as a closed tab does."""
        self.sock.close()

    def response(self, timeout: float = 10) -> tuple[int, Any]:
        """The status and the decoded JSON body (or the text); TimeoutError if none comes."""
        self.sock.settimeout(timeout)
        with self.sock.makefile("rb") as stream:
            status = int(stream.readline().split()[1])
            length = 0
            while (line := stream.readline().strip()):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            text = stream.read(length).decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


class RawPoll(RawRequest):
    def __init__(self, url: str, channels: list, last: int = 0, options: dict | None = None) -> None:
        super().__init__(url, "/longpolling/poll", call({"channels": channels, "last": last, "options": options or {}}))

    def answer(self, timeout: float = 10) -> dict:
        """The JSON-RPC envelope of the answer."""
        return self.response(timeout)[1]


class Follower(threading.Thread):
    """A client that keeps polling `channel` from its `last`, through errors and outages,
    like the JS client; keeps every notification it receives, in order."""

    live: ClassVar[list[Follower]] = []  # every one started, so a test's teardown can stop those it left

    def __init__(self, url: str, channel: str, last: int = 0) -> None:
        super().__init__(daemon=True, name=f"follower-{channel}")
        Follower.live.append(self)
        self.url, self.channel, self.last = url, channel, last
        self.received: list[dict] = []
        self.failures = 0
        self.stopping = False
        self.start()

    def run(self) -> None:
        while not self.stopping:
            try:
                status, body = post(self.url, "/longpolling/poll",
                                    call({"channels": [self.channel, WAKE], "last": self.last, "options": {}}),
                                    timeout=60)
            except OSError:  # refused, reset, timed out: the server is away
                status, body = 0, None
            if status != 200 or not isinstance(body, dict) or "result" not in body:
                self.failures += 1
                time.sleep(0.1)
                continue
            for item in body["result"]:
                self.last = max(self.last, item["id"])
                if item["channel"] == self.channel:
                    self.received.append(item)

    def messages(self) -> list:
        return [item["message"] for item in self.received]

    def ids(self) -> list[int]:
        return [item["id"] for item in self.received]


def stop_followers(followers: list[Follower], send: Callable[[str, Any], Any]) -> None:
    """Stop the loops: flag them, then wake their polls through the WAKE channel."""
    for follower in followers:
        follower.stopping = True
    with contextlib.suppress(Exception):
        send(WAKE, "stop")
    for follower in followers:
        follower.join(15)
        assert not follower.is_alive(), f"{follower.name} did not stop"


def connect(dsn: str, dbname: str | None = None) -> Any:
    conn = psycopg2.connect(psycopg2.extensions.make_dsn(dsn, dbname=dbname) if dbname else dsn)
    conn.autocommit = True
    return conn


def query(dsn: str, sql: str, params: Any = None, dbname: str | None = None) -> list[tuple]:
    """Run one statement on a short-lived autocommit connection; its rows, if any."""
    with contextlib.closing(connect(dsn, dbname)) as conn, conn.cursor() as cr:
        cr.execute(sql, params)
        return cr.fetchall() if cr.description else []


def dbname_of(dsn: str) -> str:
    return psycopg2.extensions.parse_dsn(dsn)["dbname"]


def server_backends(dsn: str) -> list[tuple[str, str]]:
    """(state, query) of every other connection to the database of `dsn`."""
    return query(dsn, "SELECT state, query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                 [dbname_of(dsn)], dbname="postgres")


def stored(dsn: str, channel: str) -> list[tuple[int, Any]]:
    """(id, message) of the channel's rows in the table, by id."""
    rows = query(dsn, "SELECT id, message FROM bus_bus WHERE channel = %s ORDER BY id", [json.dumps(channel)])
    return [(row_id, json.loads(message)) for row_id, message in rows]


class FreezingProxy:
    """A TCP relay to PostgreSQL whose open connections can be frozen: bytes stop flowing
    both ways while the sockets stay open, as behind a hung PgBouncer or a firewall that
    silently dropped the connection. New connections pass normally."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen: list[threading.Event] = []
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> int:
        """Freeze every connection open now; returns how many."""
        for event in self.frozen:
            event.set()
        return len(self.frozen)

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            frozen = threading.Event()
            self.frozen.append(frozen)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(source, target, frozen), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, target: socket.socket, frozen: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while (data := source.recv(65536)):
                while frozen.is_set():  # hold the bytes for good, keep the socket open
                    time.sleep(0.05)
                target.sendall(data)
