"""`python -m imbus serve --workers N`: N server processes sharing one port.

Each worker is a whole standalone server (`imbus/lifecycle.py`) in a process of its
own: its own listening socket on the shared port (`SO_REUSEPORT`: the kernel spreads
new connections over the workers), its own LISTEN connection and dispatcher, its own
table GC. Every worker hears every notification, so a poll gets the same answer
whichever worker its connection reached; a browser's keep-alive connection stays with
one worker until it closes. `/health` is per worker and names its `pid`.

The parent serves nothing. It holds the port (bound, not listening, so nobody else
takes it while a worker restarts), starts the embedded PostgreSQL once if no `--dsn`
was given, forks the workers, and prints
`imbus: serving http://HOST:PORT/ database DSN (N workers)` once all have started.

- A worker that dies is restarted, with one log line:
  `bus: worker 1234 exited (killed by SIGKILL) after 312.4 s; restarting in 0.0 s`.
  One that dies within 5 s of its start is restarted after a delay that doubles from
  0.5 s up to 30 s, so a worker that cannot start does not spin; a worker that lived
  longer is restarted at once. Connections waiting in a dead worker's accept queue are
  reset by the kernel; clients reconnect (the JS client does, with its `last`).
- SIGTERM or SIGINT to the parent: every worker gets SIGTERM, answers its waiting polls
  (empty) and closes; workers still running after 20 s are killed. Then the embedded
  PostgreSQL, if any, is stopped. Log line: `bus: stopping N workers`.
"""

import logging
import os
import selectors
import signal
import socket
import time
from typing import Callable, List, Optional, Set

from .options import Options

_logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
QUICK_DEATH = 5.0  # seconds: a worker dying sooner after its start has failed to start
FIRST_DELAY = 0.5  # seconds before restarting a worker that failed to start; doubles
MAX_DELAY = 30.0
STOP_TIMEOUT = 20.0  # seconds the workers get to stop before they are killed

Serve = Callable[[Options, Callable[[int], None], bool], None]  # lifecycle.serve, behind gevent patching


class Slot:
    """One of the N places for a worker, and the restart history of that place."""

    def __init__(self) -> None:
        self.pid = 0
        self.started = 0.0
        self.failures = 0  # quick deaths in a row
        self.status = 0  # the last worker's wait status
        self.due: Optional[float] = 0.0  # when to start a worker here; None while one runs


def supervise(options: Options, count: int, serve: Serve) -> None:
    """Run `count` workers on `options.port` until SIGTERM/SIGINT."""
    held = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((options.host, options.port))  # a port of 0 becomes the one every worker uses
    try:
        Supervisor(options._replace(port=held.getsockname()[1]), count, serve, held).run()
    finally:
        held.close()


class Supervisor:
    def __init__(self, options: Options, count: int, serve: Serve, held: socket.socket) -> None:
        self.options = options
        self.serve = serve
        self.held = held
        self.slots = [Slot() for _ in range(count)]
        self.ready: Set[int] = set()  # pids of workers that accept connections
        self.announced = False
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # signals arrive here
        self.ready_r, self.ready_w = os.pipe2(os.O_CLOEXEC)  # each started worker writes its pid here
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)
        self.selector.register(self.ready_r, selectors.EVENT_READ)

    def run(self) -> None:
        previous = {signum: signal.signal(signum, _ignore) for signum in (signal.SIGCHLD, *STOP_SIGNALS)}
        signal.set_wakeup_fd(self.wakeup_w)
        try:
            self._supervise()
        finally:
            signal.set_wakeup_fd(-1)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.selector.close()
            for fd in (self.wakeup_r, self.wakeup_w, self.ready_r, self.ready_w):
                os.close(fd)

    def _supervise(self) -> None:
        while True:
            now = time.monotonic()
            for slot in self.slots:
                if slot.due is not None and slot.due <= now:
                    self._start(slot)
            if set(STOP_SIGNALS) & self._wait(self._next_due()):
                break
            self._restart_dead()
        _logger.info("bus: stopping %d workers", len(self.slots))
        self._stop_all()

    def _next_due(self) -> Optional[float]:
        due = [slot.due for slot in self.slots if slot.due is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _wait(self, timeout: Optional[float]) -> Set[int]:
        """Wait for a signal or a worker's start; returns the signals received."""
        signals: Set[int] = set()
        for key, _ in self.selector.select(timeout):
            data = os.read(key.fd, 4096)
            if key.fd == self.wakeup_r:
                signals.update(data)
            else:
                self.ready.update(int(pid) for pid in data.split())
                self._announce()
        return signals

    def _announce(self) -> None:
        running = {slot.pid for slot in self.slots if slot.due is None}
        if not self.announced and len(self.ready & running) == len(self.slots):
            self.announced = True
            print(f"imbus: serving http://{self.options.host}:{self.options.port}/ database {self.options.dsn}"
                  f" ({len(self.slots)} workers)", flush=True)

    def _start(self, slot: Slot) -> None:
        pid = os.fork()
        if pid == 0:
            self._be_worker()
        slot.pid, slot.started, slot.due = pid, time.monotonic(), None

    def _be_worker(self) -> None:
        """In the forked child: serve, and never return into the parent's stack (whose
        `finally` blocks would stop the embedded PostgreSQL)."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, *STOP_SIGNALS):
                signal.signal(signum, signal.SIG_DFL)
            self.selector.close()
            self.held.close()
            for fd in (self.wakeup_r, self.wakeup_w, self.ready_r):
                os.close(fd)
            ready_w = self.ready_w
            self.serve(self.options, lambda port: os.write(ready_w, b"%d\n" % os.getpid()), True)
            code = 0
        except BaseException:
            _logger.exception("bus: worker failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def _dead(self) -> List[Slot]:
        """Reap the workers that exited; the slots they leave, their status logged."""
        dead = []
        for slot in self.slots:
            if slot.due is not None:
                continue
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
            if pid:
                slot.due = time.monotonic()
                slot.status = status
                self.ready.discard(pid)
                dead.append(slot)
        return dead

    def _restart_dead(self) -> None:
        for slot in self._dead():
            lived = time.monotonic() - slot.started
            slot.failures = slot.failures + 1 if lived < QUICK_DEATH else 0
            delay = min(FIRST_DELAY * 2 ** (slot.failures - 1), MAX_DELAY) if slot.failures else 0.0
            slot.due = time.monotonic() + delay
            _logger.warning("bus: worker %d exited (%s) after %.1f s; restarting in %.1f s",
                            slot.pid, _describe(slot.status), lived, delay)

    def _stop_all(self) -> None:
        running = {slot.pid: slot for slot in self.slots if slot.due is None}
        for pid in running:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(slot.due is None for slot in self.slots) and time.monotonic() < deadline:
            self._wait(deadline - time.monotonic())
            for slot in self._dead():
                if slot.status:
                    _logger.warning("bus: worker %d exited (%s) while stopping", slot.pid, _describe(slot.status))
        for slot in self.slots:
            if slot.due is None:
                _logger.warning("bus: worker %d did not stop in %.0f s; killing it", slot.pid, STOP_TIMEOUT)
                os.kill(slot.pid, signal.SIGKILL)
                os.waitpid(slot.pid, 0)


def _ignore(signum: int, frame: object) -> None:
    """Python-level handler: the signal's number reaches the wake-up pipe all the same."""


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
