"""Fixture of the proxy tests: Debian's nginx running deploy/nginx.conf, as the current
user, with everything it writes in a temporary folder of its own."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
from bus_fixtures import ROOT
from waiting import wait_for

CONFIG = ROOT / "deploy" / "nginx.conf"
UPSTREAMS = ("127.0.0.1:8069", "127.0.0.1:8072")  # the addresses deploy/nginx.conf gives Odoo
PROBLEMS = re.compile(r"\[(emerg|alert|crit|error)\]")
MAIN = """\
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
{user}
events {{ worker_connections 256; }}
http {{
    log_format bus '$connection $connection_requests $status $request_uri';
    access_log {dir}/access.log bus;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which a non-root PATH often lacks."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


class Nginx:
    """One nginx in the foreground (`daemon off`) on a loopback port, in front of `upstream`."""

    def __init__(self, binary: str, folder: Path, upstream: int) -> None:
        self.binary, self.folder = binary, folder
        site = CONFIG.read_text()
        for address in UPSTREAMS:
            assert site.count(address) == 1, f"{CONFIG} no longer names {address} once"
            site = site.replace(address, f"127.0.0.1:{upstream}")
        assert site.count("listen 80;") == 1, f"{CONFIG} no longer listens with `listen 80;`"
        self.site = site
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        for _ in range(3):  # the free port probed may be taken before nginx binds it
            self.port = free_port()
            (self.folder / "site.conf").write_text(self.site.replace("listen 80;", f"listen 127.0.0.1:{self.port};"))
            # As root, nginx's workers would run as `nobody`, who cannot enter this folder.
            user = "user root root;" if os.geteuid() == 0 else ""
            (self.folder / "nginx.conf").write_text(MAIN.format(dir=self.folder, user=user))
            self.process = subprocess.Popen(
                [self.binary, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                 "-e", str(self.folder / "error.log"), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            wait_for(lambda: self.process.poll() is not None or accepts(self.port), within=15,
                     message=f"nginx did not start:\n{self.errors()}")
            if self.process.poll() is None:
                return self
            if "Address already in use" not in self.errors():
                break
        raise RuntimeError(f"nginx did not start:\n{self.errors()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def errors(self) -> str:
        log = self.folder / "error.log"
        return log.read_text() if log.exists() else ""

    def access_log(self) -> list[list[str]]:
        """The fields of each request nginx logged: connection, its request number, status, URI."""
        return [line.split() for line in (self.folder / "access.log").read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def nginx() -> Iterator[Callable[[int], Nginx]]:
    """Factory: `nginx(port)` starts nginx with deploy/nginx.conf, both upstreams at that
    port. Afterwards it is stopped, its error log must hold no error, its folder goes."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx not found (./dev.sh test installs Debian's nginx when run as root)")
    folder = Path(tempfile.mkdtemp(prefix="imbus-nginx-"))
    started: list[Nginx] = []

    def start(upstream: int) -> Nginx:
        own = folder / str(len(started))
        own.mkdir()
        started.append(Nginx(binary, own, upstream))
        return started[-1].start()

    try:
        yield start
        for each in started:
            each.stop()
            assert not PROBLEMS.search(each.errors()), f"nginx logged errors:\n{each.errors()}"
    finally:
        for each in started:
            each.stop()
        shutil.rmtree(folder, ignore_errors=True)
