"""The two kinds of server the bench drives, behind one small interface.

- `Standalone`: `python -m imbus serve`; sends are `POST /longpolling/send`.
- `Odoo`: an Odoo 14 server (this addon or the stock one); pollers authenticate once with
  `/web/session/authenticate` and share the session cookie. Sends go through XML-RPC
  `execute_kw(db, uid, password, 'bus.bus', 'sendone'|'sendmany', ...)` as a server
  side program would send them, or (`send_via="route"`) through `POST /longpolling/send`
  with that session on one keep-alive connection, as a page would; behind nginx that
  route reaches the gevent process. With `--workers` and no proxy, polls and route
  sends go to the longpolling port (`--poll-url`), the rest to the HTTP port (`--url`).
"""

from __future__ import annotations

import json
import xmlrpc.client
from typing import Any

from .http import Connection, HttpError, loopback_address

POLL = "/longpolling/poll"
SEND = "/longpolling/send"
SEND_VIA = ("xmlrpc", "route")
HEALTH_SAMPLES = 8  # fresh connections per count of waiting polls: enough to reach every worker


class RpcFailure(Exception):
    """The server answered with a JSON-RPC error object."""


def result_of(envelope: dict) -> Any:
    if "error" in envelope:
        error = envelope["error"]
        raise RpcFailure(json.dumps(error.get("data", {}).get("message") or error)[:300])
    return envelope.get("result")


class Standalone:
    """A `python -m imbus serve` server at `url`."""

    kind = "standalone"

    def __init__(self, url: str, send_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.host, self.port = loopback_address(url)
        self.headers = {"Authorization": f"Bearer {send_token}"} if send_token else {}

    def connection(self) -> Connection:
        return Connection(self.host, self.port)

    def poll(self, conn: Connection, channels: list[str], last: int, options: dict | None = None) -> Any:
        return result_of(conn.rpc(POLL, {"channels": channels, "last": last, "options": options or {}}))

    def sender(self) -> StandaloneSender:
        return StandaloneSender(self)

    def waiters(self) -> int | None:
        """How many polls the server holds now, summed over its workers, or None if it
        cannot say. `/health` is per worker and names its pid; with `--workers N` the
        kernel spreads fresh connections over the workers at random, so a few of them
        reach every worker."""
        counts: dict[Any, int] = {}
        for _ in range(HEALTH_SAMPLES):
            conn = self.connection()
            try:
                conn.open()
                conn.sock.sendall(f"GET /health HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
                health = json.loads(conn._read_response().body)
            except (OSError, ValueError):
                return None
            finally:
                conn.close()
            counts[health.get("pid")] = int(health.get("waiters", 0))
        return sum(counts.values())


class StandaloneSender:
    """One keep-alive connection sending one message per request."""

    def __init__(self, target: Standalone) -> None:
        self.target = target
        self.conn = target.connection()

    def send(self, channel: str, message: Any) -> None:
        result_of(self.conn.rpc(SEND, {"channel": channel, "message": message}, headers=self.target.headers))

    def close(self) -> None:
        self.conn.close()


class Odoo:
    """An Odoo 14 server at `url`, database `db`, as user `login`."""

    kind = "odoo"

    def __init__(self, url: str, db: str, login: str, password: str, poll_url: str | None = None,
                 send_via: str = "xmlrpc") -> None:
        if send_via not in SEND_VIA:
            raise ValueError(f"send_via must be one of {SEND_VIA}, not {send_via!r}")
        self.url = url.rstrip("/")
        self.host, self.port = loopback_address(url)
        self.poll_host, self.poll_port = loopback_address(poll_url or url)  # --workers: the longpolling port
        self.db, self.login, self.password = db, login, password
        self.send_via = send_via
        self.cookie: str | None = None
        self.uid: int | None = None

    def authenticate(self) -> None:
        """Open a web session for the pollers and find the uid for XML-RPC."""
        conn = Connection(self.host, self.port)
        try:
            body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
                "db": self.db, "login": self.login, "password": self.password}}).encode()
            response = conn.post("/web/session/authenticate", body)
            if response.status != 200:
                raise HttpError(f"HTTP {response.status} from /web/session/authenticate")
            session = result_of(response.json())
            self.uid = session["uid"]
            cookies = [part.split(";")[0].strip() for part in response.headers.get("set-cookie", "").split(",")]
            self.cookie = next((cookie for cookie in cookies if cookie.startswith("session_id=")), None)
            if not self.cookie or not self.uid:
                raise RpcFailure("authentication gave no session")
        finally:
            conn.close()

    def connection(self) -> Connection:
        if self.cookie is None:
            self.authenticate()
        return Connection(self.poll_host, self.poll_port, self.cookie)

    def poll(self, conn: Connection, channels: list[str], last: int, options: dict | None = None) -> Any:
        return result_of(conn.rpc(POLL, {"channels": channels, "last": last, "options": options or {}}))

    def sender(self) -> OdooSender | OdooRouteSender:
        if self.uid is None:
            self.authenticate()
        return OdooSender(self) if self.send_via == "xmlrpc" else OdooRouteSender(self)

    def waiters(self) -> int | None:
        """How many polls Odoo's gevent process holds, from the fast path's
        /longpolling/health; None where it has none (stock Odoo, threaded odoo-bin):
        the scenarios then give the polls a fixed moment to arrive."""
        conn = Connection(self.poll_host, self.poll_port)
        try:
            conn.open()
            conn.sock.sendall(f"GET /longpolling/health HTTP/1.1\r\nHost: {self.poll_host}\r\n\r\n".encode())
            response = conn._read_response()
            if response.status != 200:
                return None
            return int(response.json()["waiting"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        finally:
            conn.close()


class OdooSender:
    """XML-RPC on `bus.bus`: the server-side way of sending in Odoo 14."""

    def __init__(self, target: Odoo) -> None:
        self.target = target
        self.proxy = xmlrpc.client.ServerProxy(f"{target.url}/xmlrpc/2/object", allow_none=True)

    def send(self, channel: str, message: Any) -> None:
        self._call("sendone", [channel, message])

    def sendmany(self, notifications: list[tuple[str, Any]]) -> None:
        self._call("sendmany", [[list(pair) for pair in notifications]])

    def _call(self, method: str, args: list) -> None:
        target = self.target
        try:
            target_call = self.proxy.execute_kw
            target_call(target.db, target.uid, target.password, "bus.bus", method, args)
        except xmlrpc.client.Fault as fault:
            if "cannot marshal None" in fault.faultString:
                return  # it ran and returned None, which Odoo's XML-RPC cannot encode
            raise RpcFailure(fault.faultString[-300:]) from None
        except (OSError, xmlrpc.client.ProtocolError) as error:
            raise HttpError(str(error)) from error

    def close(self) -> None:
        self.proxy("close")()


class OdooRouteSender:
    """`/longpolling/send` with the web session: the browser's way. Stock Odoo allows it
    to anyone; this addon to logged-in users by default (`bus_send_access`)."""

    def __init__(self, target: Odoo) -> None:
        self.conn = target.connection()

    def send(self, channel: str, message: Any) -> None:
        result_of(self.conn.rpc(SEND, {"channel": channel, "message": message}))

    def close(self) -> None:
        self.conn.close()
