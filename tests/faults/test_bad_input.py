"""Bad input gets a JSON-RPC error or a 4xx; the process stays up and nothing leaks.

One server serves the whole module (`--max-body 20000`); after every test it must
still be running, hold no waiter, and answer a peek.
"""

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
from bus_fixtures import own_server
from faults_support import RawPoll, call, health, post, query, stored
from waiting import wait_for

MAX_BODY = 20_000


@pytest.fixture(scope="module")
def srv(pg):
    yield from own_server(pg, "--max-body", str(MAX_BODY))


@pytest.fixture(autouse=True)
def still_serving(srv):
    yield
    assert srv.process.poll() is None, f"the server died:\n{srv.logs()}"
    wait_for(lambda: health(srv.url)["waiters"] == 0, within=10, message="a waiter leaked")
    assert srv.poll(["alive"], 0, {"peek": True}) == {"notifications": [], "channels": ["alive"]}


def refusal(srv, path, body):
    """Status, error name and message of a refused call."""
    status, envelope = post(srv.url, path, body)
    assert isinstance(envelope, dict) and "error" in envelope and "result" not in envelope, (status, envelope)
    error = envelope["error"]
    assert error["code"] == 200 and error["message"] == "Odoo Server Error"
    assert error["data"]["arguments"] == [error["data"]["message"]]
    return status, error["data"]["name"], error["data"]["message"]


BAD_REQUESTS = {
    "malformed JSON": b"{not json",
    "invalid UTF-8": b'{"jsonrpc": "2.0", "method": "call", "params": {"channels": ["\xff\xfe"]}, "id": 1}',
    "an array, not an envelope": b"[1, 2]",
    "a bare string": b'"call"',
    "params not an object": json.dumps({"jsonrpc": "2.0", "method": "call", "params": [["a"], 0], "id": 1}).encode(),
    "NaN": b'{"jsonrpc": "2.0", "method": "call", "params": {"channel": "a", "message": NaN}, "id": 1}',
    "Infinity": b'{"jsonrpc": "2.0", "method": "call", "params": {"channels": ["a"], "last": -Infinity}, "id": 1}',
    "nesting too deep": b'{"params": {"channel": "a", "message": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    "an integer of 5000 digits": b'{"params": {"channel": "a", "message": ' + b"9" * 5000 + b"}}",
    "empty body": b"",
}


@pytest.mark.parametrize("path", ["/longpolling/poll", "/longpolling/send"])
@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_body_that_is_not_a_json_rpc_call_is_a_400(srv, dsn, path, case):
    status, name, _ = refusal(srv, path, BAD_REQUESTS[case])
    assert (status, name) == (400, "werkzeug.exceptions.BadRequest")


BAD_POLLS = [
    ({"last": 0}, "builtins.TypeError", "missing a required argument: 'channels'"),
    ({"channels": "gold", "last": 0}, "builtins.Exception", "must be a list"),
    ({"channels": {"gold": 1}, "last": 0}, "builtins.Exception", "must be a list"),
    ({"channels": [["db", "res.partner", 3]], "last": 0}, "builtins.Exception", "only string channels"),
    ({"channels": ["ok", 3], "last": 0}, "builtins.Exception", "only string channels"),
    ({"channels": [None], "last": 0}, "builtins.Exception", "only string channels"),
    ({"channels": ["x"] * 3000, "last": 0}, "builtins.Exception", "at most 1000 channels"),
    ({"channels": ["a"], "last": -1}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": 2**63}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": 10**40}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": "abc"}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": "12"}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": 1.5}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": True}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": [1]}, "builtins.ValueError", "non-negative integer"),
    ({"channels": ["a"], "last": 0, "options": 5}, "builtins.TypeError", "options must be an object"),
    ({"channels": ["a"], "last": 0, "options": ["peek"]}, "builtins.TypeError", "options must be an object"),
    ({"channels": ["a"], "last": 0, "options": {}, "extra": 1}, "builtins.TypeError", "unexpected keyword"),
]


@pytest.mark.parametrize(("params", "name", "fragment"), BAD_POLLS,
                         ids=[json.dumps(params)[:60] for params, _, _ in BAD_POLLS])
def test_a_bad_poll_is_a_json_rpc_error_that_says_why(srv, params, name, fragment):
    status, actual_name, message = refusal(srv, "/longpolling/poll", call(params))
    assert (status, actual_name) == (200, name)
    assert fragment in message


BAD_SENDS = [
    ({"channel": ["db", "res.partner", 3], "message": 1}, "only string channels"),
    ({"channel": 7, "message": 1}, "only string channels"),
    ({"channel": None, "message": 1}, "only string channels"),
    ({"channel": "refused"}, "missing a required argument: 'message'"),
    ({"message": 1}, "missing a required argument: 'channel'"),
]


@pytest.mark.parametrize(("params", "fragment"), BAD_SENDS, ids=[json.dumps(params) for params, _ in BAD_SENDS])
def test_a_bad_send_is_refused_and_stores_nothing(srv, params, fragment):
    before = stored_max(srv.dsn)
    status, _, message = refusal(srv, "/longpolling/send", call(params))
    assert status == 200 and fragment in message
    assert stored_max(srv.dsn) == before


def stored_max(dsn):
    return query(dsn, "SELECT COALESCE(max(id), 0) FROM bus_bus")[0][0]


@pytest.mark.parametrize("path", ["/longpolling/poll", "/longpolling/send"])
def test_a_body_over_max_body_is_a_413_and_stores_nothing(srv, path):
    before = stored_max(srv.dsn)
    params = {"channel": "big", "message": "x" * MAX_BODY} if path.endswith("send") else \
        {"channels": ["c" * 100] * 300, "last": 0}
    status, name, message = refusal(srv, path, call(params))
    assert (status, name) == (413, "werkzeug.exceptions.RequestEntityTooLarge")
    assert str(MAX_BODY) in message
    assert stored_max(srv.dsn) == before


def test_a_chunked_body_over_max_body_is_refused_too(srv):
    """No Content-Length to check up front: the limit must hold while reading."""
    parts = urlsplit(srv.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = call({"channel": "big", "message": "x" * (2 * MAX_BODY)})
    chunks = (body[n:n + 4096] for n in range(0, len(body), 4096))
    conn.request("POST", "/longpolling/send", body=chunks, headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    response = conn.getresponse()
    envelope = json.loads(response.read())
    conn.close()
    assert response.status == 413, envelope
    assert not stored(srv.dsn, "big")


def test_a_message_just_under_max_body_is_stored_and_delivered(srv):
    message = "m" * (MAX_BODY - 200)
    srv.send("large", message)
    assert srv.poll(["large"], 0)[0]["message"] == message


def test_a_channel_too_long_for_a_notify_payload_still_reaches_its_poller(srv):
    channel = "long-" + "x" * 9000  # over PostgreSQL's 8000-byte NOTIFY payload limit
    last = stored_max(srv.dsn)
    poll = RawPoll(srv.url, [channel], last)
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    srv.send(channel, "made it")
    assert [item["message"] for item in poll.answer()["result"]] == ["made it"]


def test_a_thousand_channels_in_one_poll_are_served(srv):
    channels = [f"many-{n}" for n in range(1000)]
    last = stored_max(srv.dsn)
    poll = RawPoll(srv.url, channels, last)
    wait_for(lambda: health(srv.url)["waiters"] == 1)
    srv.send("many-999", "the last one")
    assert [item["channel"] for item in poll.answer()["result"]] == ["many-999"]


ODD_STRINGS = ["a\u0000b", "\ud800", "\udfff\ud800", "€\u2028\u2029", "\x7f\x1b[31m", "'; DROP TABLE bus_bus; --"]


@pytest.mark.parametrize("text", ODD_STRINGS)
def test_odd_strings_round_trip_as_channel_and_message(srv, text):
    srv.send(text, {"text": text})
    assert [(item["channel"], item["message"]) for item in srv.poll([text], 0)] == [(text, {"text": text})]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/longpolling/poll", 405),
    ("PUT", "/longpolling/send", 405),
    ("GET", "/longpolling/nowhere", 404),
    ("POST", "/health", 405),
])
def test_wrong_routes_and_methods_are_4xx(srv, method, path, status):
    parts = urlsplit(srv.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, body=b"{}" if method != "GET" else None)
    assert conn.getresponse().status == status
    conn.close()


def test_a_body_shorter_than_its_content_length_costs_nothing_once_the_client_leaves(srv):
    parts = urlsplit(srv.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"params\": {")
    status, _ = post(srv.url, "/longpolling/send", call({"channel": "after-liar", "message": 1}))
    assert status == 200 and stored(srv.dsn, "after-liar")


@pytest.mark.parametrize("raw", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS ClientHello on the plain port
    b"GARBAGE\r\n\r\n",
    b"POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
    b"POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\n" + b"X-Filler: " + b"b" * 70_000 + b"\r\n\r\n",
])
def test_broken_http_is_refused_and_the_connection_closed(srv, raw):
    parts = urlsplit(srv.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(raw)
        answer = sock.recv(65536)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
