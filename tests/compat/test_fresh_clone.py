"""The README's two commands from a fresh clone in a private (0700) folder (issue 8): as
the user running the tests and, when that is root, as a throw-away normal user whose home
is 0700. `./dev.sh serve` answers the demo page and a send wakes a poll; `./dev.sh test`
passes a few test files that start embedded clusters; no folder above the clone changes
its mode or owner. The clone is of the checkout's last commit, so its venvs are made
from scratch (pip's cache makes that quick)."""

import contextlib
import json
import os
import pwd
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import psutil
import pytest
from bus_fixtures import ROOT
from waiting import wait_for

from imbus.embedded import RUNTIME, EmbeddedPostgres

TESTS = ("tests/core/test_store.py", "tests/faults/test_faults_postgres.py")
SERVE_START = 600  # seconds, with the venv made first
TEST_RUN = 900
pytestmark = pytest.mark.timeout(SERVE_START + TEST_RUN + 300)


class Clone:
    """A clone of the checkout's HEAD in `path`, run as `user` (None: as ourselves)."""

    def __init__(self, path: Path, user: Optional[pwd.struct_passwd]) -> None:
        self.path = path
        self.user = user
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(path)], check=True, timeout=120)
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        subprocess.run(["git", "-C", str(path), "checkout", "--quiet", "--detach", head], check=True, timeout=60)
        if user:
            subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(path)], check=True, timeout=60)

    def popen(self, *command: str, **options: Any) -> subprocess.Popen:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("PYTEST", "PYTHON", "BUS_", "IMBUS_", "VIRTUAL_ENV"))}
        switch: Dict[str, Any] = {}
        if self.user:
            env.update(HOME=self.user.pw_dir, USER=self.user.pw_name, LOGNAME=self.user.pw_name,
                       PATH="/usr/local/bin:/usr/bin:/bin")  # not root's pyenv shims, which it cannot reach
            switch = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.Popen(command, cwd=self.path, env=env, start_new_session=True, text=True, **switch,
                                **options)

    def run(self, *command: str, timeout: float) -> subprocess.CompletedProcess:
        """Run to completion; past `timeout`, interrupt it (pytest then tears its clusters down)."""
        process = self.popen(*command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            try:
                output, _ = process.communicate(timeout=60)
            finally:
                _kill_group(process)
            pytest.fail(f"{' '.join(command)} ran over {timeout} s:\n{output[-5000:]}")
        return subprocess.CompletedProcess(command, process.returncode, output)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@contextlib.contextmanager
def serving(clone: Clone) -> Iterator[str]:
    """`./dev.sh serve --port 0` in the clone; yields its URL, stops it with SIGTERM."""
    with tempfile.TemporaryFile("w+") as log:
        process = clone.popen("./dev.sh", "serve", "--port", "0", stdout=subprocess.PIPE, stderr=log)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
        try:
            deadline = time.monotonic() + SERVE_START
            while True:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    log.seek(0)
                    pytest.fail(f"./dev.sh serve did not start within {SERVE_START} s:\n{log.read()[-5000:]}")
                if line.startswith("imbus: serving"):
                    yield line.split()[2].rstrip("/")
                    break
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            _kill_group(process)
            process.stdout.close()


def rpc(url: str, path: str, params: dict) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}).encode()
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        envelope = json.loads(response.read())
    assert "error" not in envelope, envelope
    return envelope.get("result")  # a send's null result is left out


def listening_with_a_waiter(url: str) -> bool:
    """Whether the server's listener is up and a poll waits (`/health` answers 503, with
    the same JSON, while the listener connects)."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            health = json.loads(response.read())
    except urllib.error.HTTPError as error:
        health = json.loads(error.read())
    return health["listening"] and health["waiters"] >= 1


def check_serve(clone: Clone) -> None:
    """The demo page answers and a send wakes a waiting poll."""
    started = time.monotonic()
    with serving(clone) as url:
        print(f"{clone.path}: ./dev.sh serve (venv made first) served after {time.monotonic() - started:.0f} s")
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert b"IM Bus" in response.read()
        polled: List[Any] = []
        poller = threading.Thread(target=lambda: polled.append(rpc(url, "/longpolling/poll",
                                                                   {"channels": ["demo"], "last": 0})))
        poller.start()
        wait_for(lambda: listening_with_a_waiter(url), within=30, message="the poll never waited")
        rpc(url, "/longpolling/send", {"channel": "demo", "message": {"text": "fresh clone"}})
        poller.join(10)
        assert [(item["channel"], item["message"]) for item in polled[0]] == [("demo", {"text": "fresh clone"})]


def check_tests(clone: Clone) -> None:
    started = time.monotonic()
    done = clone.run("./dev.sh", "test", "-q", *TESTS, timeout=TEST_RUN)
    print(f"{clone.path}: ./dev.sh test {' '.join(TESTS)}: {time.monotonic() - started:.0f} s")
    summary = done.stdout.strip().splitlines()[-1]
    # An own_pg test that cannot start its cluster skips: that must fail here.
    assert done.returncode == 0 and "skipped" not in summary and " passed" in summary, done.stdout[-5000:]


def modes_above(path: Path) -> Dict[Path, tuple]:
    return {folder: (info.st_mode, info.st_uid, info.st_gid)
            for folder in path.parents for info in [os.stat(folder)]}


def check_clone(clone: Clone) -> None:
    before = modes_above(clone.path)
    try:
        check_serve(clone)
        check_tests(clone)
    finally:
        _stop_clusters(clone)
    assert modes_above(clone.path) == before
    if os.geteuid() == 0:
        info = os.lstat(RUNTIME)
        assert (info.st_mode & 0o7777, info.st_uid) == (0o755, 0)


def _stop_clusters(clone: Clone) -> None:
    """Whatever a failed run left: the served cluster (its data is in `RUNTIME` as root)."""
    if clone.user is None:
        EmbeddedPostgres(clone.path / ".imbus-data" / "pg").destroy()


def test_a_fresh_clone_in_a_private_folder_serves_and_tests():
    with tempfile.TemporaryDirectory(prefix="imbus-clone-") as folder:
        assert os.stat(folder).st_mode & 0o777 == 0o700
        check_clone(Clone(Path(folder) / "bus", None))


@pytest.fixture
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    """A normal user whose home is 0700; removed afterwards with its processes and files."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    name = f"imbusci{uuid.uuid4().hex[:8]}"
    home = Path("/home") / name
    subprocess.run(["useradd", "--user-group", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                    name], check=True, capture_output=True, timeout=30)
    user = pwd.getpwnam(name)
    try:
        home.mkdir(mode=0o700)
        os.chown(home, user.pw_uid, user.pw_gid)
        yield user
    finally:
        leftovers = [process for process in psutil.process_iter(["uids"])  # e.g. what an interrupted run left
                     if process.info["uids"] and process.info["uids"].real == user.pw_uid]
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(leftovers, timeout=10)
        for entry in Path(tempfile.gettempdir()).iterdir():  # its pytest and server files
            with contextlib.suppress(FileNotFoundError):
                if entry.lstat().st_uid != user.pw_uid:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        subprocess.run(["userdel", name], check=True, capture_output=True, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def test_a_fresh_clone_in_a_normal_users_private_home_serves_and_tests(throwaway_user):
    check_clone(Clone(Path(throwaway_user.pw_dir) / "bus", throwaway_user))
