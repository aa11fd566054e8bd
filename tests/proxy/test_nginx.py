"""Long-polling through nginx with deploy/nginx.conf, in front of the standalone server
(which answers both Odoo routes, so both upstreams point at it)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

from waiting import wait_for

TIMEOUT = 50  # the poll's own wait, imbus.channels.TIMEOUT


class Client:
    """One keep-alive HTTP/1.1 connection to nginx, as a browser tab holds."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT + 30)

    def rpc(self, path: str, params: dict) -> tuple[int, Any]:
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1})
        self.conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        text = response.read().decode()
        try:
            return response.status, json.loads(text)
        except ValueError:  # nginx's own error pages are HTML
            return response.status, text

    def poll(self, channels: list[str], last: int = 0) -> tuple[int, Any]:
        return self.rpc("/longpolling/poll", {"channels": channels, "last": last, "options": {}})

    def once(self, path: str, params: dict) -> tuple[int, Any]:
        """One call, then the connection is closed."""
        try:
            return self.rpc(path, params)
        finally:
            self.conn.close()


class Background(threading.Thread):
    """`call()` in a thread; `elapsed` and `done` (monotonic) once it returned."""

    def __init__(self, call: Any) -> None:
        super().__init__(daemon=True)
        self.call, self.outcome, self.done = call, None, 0.0
        self.started = time.monotonic()
        self.start()

    def run(self) -> None:
        self.outcome = self.call()
        self.done = time.monotonic()

    def result(self, within: float) -> Any:
        self.join(within)
        assert not self.is_alive(), "no answer came through nginx"
        return self.outcome


def server_connections(port: int) -> set[int]:
    """Client ports of the established TCP connections to the server's port, from the kernel."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
            peers.add(int(remote.rsplit(":", 1)[1], 16))
    return peers


def logged_polls(proxy) -> list[list[str]]:
    """The polls nginx has answered and logged (the quiet one is not among them yet)."""
    return [fields for fields in proxy.access_log() if fields[3] == "/longpolling/poll"]


def test_nginx_holds_a_quiet_poll_50_s_wakes_a_poll_at_once_and_reuses_its_connections(server, nginx):
    srv = server()
    proxy = nginx(srv.port)
    quiet = Background(lambda: Client(proxy.port).once("/longpolling/poll", {"channels": ["quiet"], "last": 0}))
    wait_for(lambda: srv.health()["waiters"] == 1)
    before = server_connections(srv.port)  # the quiet poll's

    tab = Client(proxy.port)
    woken = Background(lambda: tab.poll(["news"]))
    wait_for(lambda: srv.health()["waiters"] == 2)
    sent = time.monotonic()
    status, envelope = Client(proxy.port).once("/longpolling/send", {"channel": "news", "message": "hello"})
    assert (status, "error" in envelope) == (200, False), envelope
    status, envelope = woken.result(within=10)
    assert status == 200 and [item["message"] for item in envelope["result"]] == ["hello"]
    assert woken.done - sent < 2, f"woken {woken.done - sent:.2f} s after the send"

    kept, first_sock = [], tab.conn.sock
    for _ in range(5):  # re-polls from the same tab, answered at once from the row above
        status, envelope = tab.poll(["news"])
        assert status == 200 and [item["message"] for item in envelope["result"]] == ["hello"]
        assert tab.conn.sock is first_sock, "nginx closed the client's keep-alive connection"
        kept.append(server_connections(srv.port) - before)
    assert set.intersection(*kept), f"nginx did not keep one connection to the server for every poll: {kept}"
    assert len(set.union(*kept)) <= 2, f"more connections to the server than the send's and the tab's: {kept}"
    wait_for(lambda: len(logged_polls(proxy)) == 6, message="nginx did not log the tab's six polls")
    polls = logged_polls(proxy)  # connection, its request number, status
    assert [fields[:3] for fields in polls] == [[polls[0][0], str(n), "200"] for n in range(1, 7)], polls

    status, envelope = quiet.result(within=TIMEOUT + 20)
    assert status == 200, f"nginx answered the quiet poll with {status}: {envelope}"
    assert envelope["result"] == [], envelope
    assert quiet.done - quiet.started >= TIMEOUT - 0.5, f"answered after {quiet.done - quiet.started:.1f} s"
    tab.conn.close()
