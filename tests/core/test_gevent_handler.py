"""The gevent handler of Odoo's long-polling process (`imbus.gevent_handler`), in a real
gevent server process over loopback: no Nagle delay, hang-ups noticed."""

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "support" / "polling_handler_server.py"


@contextlib.contextmanager
def server(*args):
    process = subprocess.Popen([sys.executable, str(SERVER), *args], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait(10)


def request(sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                 .split(b":")[1])
    while len(body) < length:
        body += sock.recv(65536)
    return json.loads(body)


@pytest.fixture(scope="module")
def port():
    with server() as port:
        yield port


def test_accepted_connections_have_tcp_nodelay(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert request(sock, "/nodelay") == {"nodelay": 1}


def test_the_connection_accepted_before_the_handler_was_installed_is_adopted():
    """Inside Odoo the fast path installs the handler during the first request: that
    request's connection, kept alive, must lose Nagle's delay too."""
    with server("--late") as late, socket.create_connection(("127.0.0.1", late), timeout=5) as first:
        assert request(first, "/nodelay") == {"nodelay": 1}
        assert median_answer_time(first, 20) < 0.015
        with socket.create_connection(("127.0.0.1", late), timeout=5) as second:
            assert request(second, "/nodelay") == {"nodelay": 1}


def test_keep_alive_answers_come_without_nagle_delay(port):
    """gevent writes headers and body apart: without TCP_NODELAY each answer on a
    kept-alive connection waits ~40 ms for the client's delayed ACK."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert median_answer_time(sock, 30) < 0.015


def median_answer_time(sock, requests: int) -> float:
    """The median time of `requests` small requests, one after the other, on `sock`
    (a Nagle delay shows as ~40 ms each)."""
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        request(sock, "/small")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_a_client_that_hangs_up_ends_its_wait_at_once(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as control:
        waits = request(control, "/state")["waits"]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: request(control, "/state")["waits"] != waits, within=5)
        started = time.monotonic()
        client.close()
        wait_for(lambda: request(control, "/state")["ended"] is not None, within=10)
        state = request(control, "/state")
    assert state["waits"] == waits + 1
    assert state["ended"] == "cancelled"
    assert time.monotonic() - started < 10  # noticed, not run out at its 30 s
