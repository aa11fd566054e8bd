"""Security of the standalone server: where it listens, who may send, what a client may
listen to, which files it serves."""

import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bus_fixtures import GOLDEN, ROOT, own_server
from faults_support import RawPoll, call, health, post, query
from waiting import wait_for

from imbus import sender
from imbus.channels import json_dump
from imbus.db import Pools
from imbus.dispatcher import Dispatcher
from imbus.embedded import free_port

TOKEN = "s3cret-token"




@pytest.fixture(scope="module")
def open_srv(pg):
    """A server as started by default: loopback, no send token."""
    yield from own_server(pg)


@pytest.fixture(scope="module")
def guarded_srv(pg):
    yield from own_server(pg, "--send-token", TOKEN)


@pytest.fixture
def pools(open_srv):
    database = Pools(open_srv.dsn)
    yield database
    database.close()


def listening_addresses(port):
    """Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def test_the_server_listens_on_the_loopback_interface_by_default(open_srv):
    assert listening_addresses(open_srv.port) == ["0100007F"]  # 127.0.0.1 only, no IPv6 wildcard


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.1", "127.attacker.example"])
def test_serving_beyond_loopback_without_a_send_token_is_refused(dsn, host):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "imbus", "serve", "--dsn", dsn, "--host", host, "--port", str(port)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result
    assert "--send-token is required" in result.stderr
    assert listening_addresses(port) == []


def test_serving_beyond_loopback_with_a_send_token_requires_it(server):
    srv = server("--host", "0.0.0.0", "--send-token", TOKEN)
    assert listening_addresses(srv.port) == ["00000000"]
    assert refused_send(srv, {})[0] == 403


def refused_send(srv, headers, channel="guarded"):
    """Status and error name of a send that must be refused; checks nothing was stored."""
    status, envelope = post(srv.url, "/longpolling/send", call({"channel": channel, "message": "intruder"}), headers)
    assert "error" in envelope, envelope
    assert not query(srv.dsn, "SELECT 1 FROM bus_bus WHERE message = %s", ['"intruder"'])
    return status, envelope["error"]["data"]["name"]


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}",
    f"Bearer  {TOKEN}", f"Bearer {TOKEN.upper()}",
])
def test_a_send_without_the_right_token_is_denied(guarded_srv, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    assert refused_send(guarded_srv, headers) == (403, "odoo.exceptions.AccessDenied")


def test_a_send_with_the_token_is_delivered_and_polls_need_none(guarded_srv):
    srv = guarded_srv
    poll = RawPoll(srv.url, ["guarded"])
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    status, envelope = post(srv.url, "/longpolling/send", call({"channel": "guarded", "message": "hello"}),
                            {"Authorization": f"Bearer {TOKEN}"})
    assert (status, envelope) == (200, {"jsonrpc": "2.0", "id": 1})
    assert [item["message"] for item in poll.answer()["result"]] == ["hello"]


def test_without_a_token_the_loopback_send_route_is_open(open_srv):
    srv = open_srv
    srv.send("open", "anyone on this machine")
    assert srv.poll(["open"], 0)[0]["message"] == "anyone on this machine"


def test_a_cross_site_page_cannot_send(open_srv):
    """A web page may POST text/plain anywhere without a CORS preflight: the send route
    takes only application/json (as Odoo's json routes do), which needs a preflight that
    it never grants."""
    srv = open_srv
    status, envelope = post(srv.url, "/longpolling/send", call({"channel": "csrf", "message": "forged"}),
                            {"Content-Type": "text/plain"})
    assert status == 415 and "error" in envelope
    assert not query(srv.dsn, "SELECT 1 FROM bus_bus WHERE message = %s", ['"forged"'])
    parts = urlsplit(srv.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("OPTIONS", "/longpolling/send", headers={"Origin": "https://evil.example",
                                                           "Access-Control-Request-Method": "POST"})
    response = conn.getresponse()
    assert response.status >= 400 and response.getheader("Access-Control-Allow-Origin") is None
    conn.close()


PRIVATE = ("db", "res.partner", 3)
SPELLED = '["db","res.partner",3]'  # what JSON.stringify gives for it in a browser
OTHER, OTHER_SPELLED = ("db", "res.partner", 4), '["db","res.partner",4]'


def test_a_client_cannot_listen_on_a_private_channel_by_naming_it(open_srv, pools):
    srv, database = open_srv, pools
    keys = {case["case"]: case["json_dump"] for case in json.loads((GOLDEN / "channel_keys.json").read_text())}
    assert json_dump(PRIVATE) == keys["tuple db/model/id"].replace("mydb", "db")
    assert json_dump(SPELLED) == keys["JS JSON.stringify'd string"].replace("mydb", "db")
    assert json_dump(PRIVATE) != json_dump(SPELLED)  # two different channels

    refused = srv.rpc("/longpolling/poll", {"channels": [list(PRIVATE)], "last": 0, "options": {}})
    assert refused["error"]["data"]["message"] == "bus.Bus only string channels are allowed."
    spy = RawPoll(srv.url, [SPELLED, "spy-done"])
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    sender.sendone(database, database.dbname, PRIVATE, {"secret": "for partner 3 only"})
    sender.sendone(database, database.dbname, "spy-done", "end")
    assert [item["channel"] for item in spy.answer()["result"]] == ["spy-done"]
    peek = srv.poll([SPELLED], 0, {"peek": True})
    assert peek["notifications"] == []


def test_a_client_cannot_write_into_a_private_channel(open_srv, pools):
    srv, database = open_srv, pools
    refused = srv.rpc("/longpolling/send", {"channel": list(OTHER), "message": "forged"})
    assert refused["error"]["data"]["message"] == "bus.Bus only string channels are allowed."
    srv.send(OTHER_SPELLED, "forged")  # allowed: but it lands on the string channel, not the private one
    bus = Dispatcher(database)
    try:
        private = bus.poll(database.dbname, [OTHER], 0, {"peek": True})["notifications"]
        spelled = bus.poll(database.dbname, [OTHER_SPELLED], 0, {"peek": True})["notifications"]
        assert private == []
        assert [item["message"] for item in spelled] == ["forged"]
    finally:
        bus.stop()


@pytest.mark.parametrize("path", [
    "/bus/static/../imbus/server.py", "/bus/static/%2e%2e/imbus/server.py", "/bus/static/..%2fimbus/server.py",
    "/bus/static/%2e%2e%2f%2e%2e%2fetc/passwd", "/bus/static//etc/passwd", "/bus/static/src/../../imbus/db.py",
])
def test_static_files_stay_inside_static(open_srv, path):
    srv = open_srv
    parts = urlsplit(srv.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    location = response.getheader("Location") or ""
    assert response.status == 404 or (response.status == 308 and urlsplit(location).path.startswith("/bus/static/")), \
        (response.status, body[:200])
    assert b"import" not in body and b"root:" not in body
