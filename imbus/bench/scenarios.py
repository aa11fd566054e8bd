"""The scenarios: each drives a running server and returns one result dict.

Pollers behave like browsers: one keep-alive connection each, re-polling at once
with the highest id they received. They start from the current last id (learnt from a
marker message), as a page that has been open a while does, so the first poll
already waits in memory instead of querying the last 50 s of the table.
"""

from __future__ import annotations

import contextlib
import random
import resource
import sys
import time
import uuid
from typing import Any, Callable

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import psycopg2

from .. import notify, store
from ..channels import json_dump
from ..db import with_dbname
from .http import HttpError
from .process import CpuMeter, cpu_seconds, rss_mb
from .sql import Statements
from .stats import Tally, summary
from .targets import RpcFailure

CONNECT_AT_ONCE = 200  # connections opened concurrently while pollers ramp up
SETTLE = 2.0  # seconds to wait for polls to be held when the server cannot count them
DRAIN = 5.0  # seconds to wait for in-flight deliveries after the last send
RETRY_PAUSE = 0.1
STEADY = 0.5  # seconds a count of held polls must stay put to be trusted


class PrimeFailed(Exception):
    """The marker could not be sent or polled back: the server is not serving polls, so
    no scenario can run; the message says what it answered."""


class Run:
    """What every scenario shares: the target, the tally, pollers, statements, deadline."""

    def __init__(self, target: Any, name: str, dsn: str | None = None, server_pid: int | None = None,
                 progress: bool = False) -> None:
        self.target = target
        self.name = name
        self.tag = uuid.uuid4().hex[:8]
        self.tally = Tally()
        self.statements = Statements(dsn)
        self.server_pid = server_pid
        self.progress = progress
        self.pollers: list[Poller] = []
        self.group = gevent.pool.Group()
        self.connecting = gevent.lock.Semaphore(CONNECT_AT_ONCE)
        self.stopping = False
        self.started = time.monotonic()
        self.seq = 0
        self.baseline = 0
        self.extra: dict[str, Any] = {}

    def channel(self, index: int) -> str:
        return f"bench.{self.tag}.{index}"

    # -- pollers --------------------------------------------------------------

    def start_pollers(self, count: int, channels_of: Callable[[int], list[str]], last: int,
                      churn: float = 0.0) -> None:
        self.baseline = self.target.waiters() or 0
        for index in range(count):
            poller = Poller(self, index, channels_of(index), last, churn)
            self.pollers.append(poller)
            self.group.spawn(poller.loop)

    def wait_held(self, count: int | None = None, within: float = 120.0) -> bool:
        """Wait until the server holds our polls: its count reaches the baseline plus
        ours, or, once every poller has its poll out, stays put at ours or more for a
        moment (polls that earlier clients abandoned expire meanwhile)."""
        mine = len(self.pollers) if count is None else count
        if self.target.waiters() is None:
            gevent.sleep(SETTLE)
            return True
        deadline = time.monotonic() + within
        previous, steady_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            held = self.target.waiters() or 0
            if held >= self.baseline + mine:
                return True
            if held != previous:
                previous, steady_since = held, time.monotonic()
            out = sum(poller.polling for poller in self.pollers)
            if held >= mine and out >= mine and time.monotonic() - steady_since > STEADY:
                return True
            gevent.sleep(0.05)
        return False

    def lone_poller(self) -> tuple[str, Poller]:
        """One poller on a channel of its own, waiting from the current last id."""
        last = self.prime()
        channel = self.channel(0)
        self.start_pollers(1, lambda index: [channel], last)
        self.wait_held()
        return channel, self.pollers[0]

    def rounds(self, count: int, one: Callable[[Any], None]) -> None:
        """`count` rounds through one sender, the server's statements counted around them
        and every delivery awaited."""
        sender = self.target.sender()
        self.statements.start()
        try:
            for _ in range(count):
                one(sender)
        finally:
            sender.close()
        self.wait_delivered()
        self.statements.stop()

    def recipients(self, channel: str) -> list[int]:
        return [poller.index for poller in self.pollers if channel in poller.channels]

    # -- sending ----------------------------------------------------------------

    def prime(self) -> int:
        """The current last id: send a marker and poll it back."""
        channel = self.channel("prime")
        try:
            sender = self.target.sender()
            try:
                sender.send(channel, {"marker": self.tag})
            finally:
                sender.close()
        except (HttpError, RpcFailure, OSError) as error:
            raise PrimeFailed(f"sending the marker failed: {error}") from None
        try:
            conn = self.target.connection()
            try:
                notifications = self.target.poll(conn, [channel], 0)
            finally:
                conn.close()
        except (HttpError, RpcFailure, OSError) as error:
            raise PrimeFailed(f"the first poll (the marker's) failed: {error}") from None
        return max((notification["id"] for notification in notifications), default=0)

    def send(self, sender: Any, channel: str, recipients: list[int]) -> bool:
        """Send one stamped message; False (and an error counted) if the send failed."""
        self.seq += 1
        seq = self.seq
        message = self.tally.message(seq)
        try:
            sender.send(channel, message)
        except HttpError as error:
            self.tally.error("http: send", error)
            return False
        except RpcFailure as error:
            self.tally.error("rpc: send", error)
            return False
        self.tally.sent(seq, recipients, message["at"], time.monotonic() - message["at"])
        return True

    def wait_delivered(self, within: float = DRAIN) -> bool:
        deadline = time.monotonic() + within
        while self.tally.outstanding() and time.monotonic() < deadline:
            gevent.sleep(0.01)
        return not self.tally.outstanding()

    # -- reporting ----------------------------------------------------------------

    def report_progress(self, every: float = 2.0) -> None:
        while True:
            gevent.sleep(every)
            self.print_progress()

    def print_progress(self) -> None:
        tally = self.tally
        rss = rss_mb(self.server_pid) if self.server_pid else None
        line = (f"[{self.name}] {time.monotonic() - self.started:6.1f}s pollers {len(self.pollers)}"
                f" sent {tally.sends} received {len(tally.latencies)} outstanding {tally.outstanding()}"
                f" errors {sum(tally.errors.values())}")
        if rss is not None:
            line += f" server {rss} MB"
        print(line, file=sys.stderr, flush=True)

    def result(self, **fields: Any) -> dict[str, Any]:
        sql = self.statements.result if self.statements.result else {"n/a": self.statements.reason or "no data"}
        return {"scenario": self.name, "target": self.target.kind, "pollers": len(self.pollers),
                **fields, **self.tally.report(), "sql": sql, **self.extra,
                "elapsed_s": round(time.monotonic() - self.started, 2)}

    def close(self) -> None:
        self.stopping = True
        self.group.kill(block=True, timeout=10)
        for poller in self.pollers:
            poller.close()


class Poller:
    """One browser tab's long-poll loop on its own keep-alive connection.

    With `churn` > 0 it abandons a poll now and then (closes the connection mid-wait,
    like a closed tab or a dropped network) and comes back with its last id.
    """

    def __init__(self, run: Run, index: int, channels: list[str], last: int, churn: float = 0.0) -> None:
        self.run = run
        self.index = index
        self.channels = channels
        self.last = last
        self.churn = churn
        self.conn = run.target.connection()
        self.arrived = gevent.event.Event()
        self.reconnects = 0
        self.polling = False  # a poll is out, unanswered

    def loop(self) -> None:
        run = self.run
        with run.connecting:
            try:
                self.conn.open()
            except (OSError, HttpError) as error:
                run.tally.error("http: connect", error)
        while not run.stopping:
            try:
                with gevent.Timeout(self._patience(), False):
                    self.polling = True
                    notifications = run.target.poll(self.conn, self.channels, self.last)
                    self.polling = False
                    self.take(notifications)
                    continue
                self.polling = False
                self.conn.close()  # abandoned mid-poll
                self.reconnects += 1
            except HttpError as error:
                self.polling = False
                run.tally.error("http: poll", error)
                gevent.sleep(RETRY_PAUSE)
            except RpcFailure as error:
                self.polling = False
                run.tally.error("rpc: poll", error)
                gevent.sleep(RETRY_PAUSE)

    def take(self, notifications: list[dict]) -> None:
        now = time.monotonic()
        for notification in notifications:
            self.run.tally.received(self.index, notification["message"], now)
            self.last = max(self.last, notification["id"])
        self.arrived.set()

    def _patience(self) -> float | None:
        """How long to wait on this poll before abandoning it (None: as long as it takes)."""
        if self.churn and random.random() < self.churn:
            return random.uniform(0.01, 0.5)  # often before an answer, sometimes while it comes
        return None

    def close(self) -> None:
        self.conn.close()


def _guarded(run: Run, deadline: float, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `body` within `deadline` seconds, always closing the pollers."""
    reporter = gevent.spawn(run.report_progress) if run.progress else None
    try:
        result = None
        with gevent.Timeout(deadline, False):
            result = body()
        if result is None:
            run.extra["timed_out"] = True
            run.statements.stop()
            result = run.result()
        return result
    finally:
        if reporter is not None:
            reporter.kill()
        run.close()


# -- the scenarios --------------------------------------------------------------------


def pingpong(target: Any, messages: int = 200, pause: float = 0.001, deadline: float = 60.0,
             dsn: str | None = None, server_pid: int | None = None, progress: bool = False) -> dict[str, Any]:
    """One poller, one message at a time: the latency of the whole path. The sender
    waits for each message to arrive, then `pause` s for the poller to wait again."""
    run = Run(target, "pingpong", dsn, server_pid, progress)

    def body() -> dict[str, Any]:
        channel, poller = run.lone_poller()

        def one(sender: Any) -> None:
            poller.arrived.clear()
            if run.send(sender, channel, [0]):
                poller.arrived.wait(5.0)
            gevent.sleep(pause)

        run.rounds(messages, one)
        return run.result(channels=1)

    return _guarded(run, deadline, body)


def broadcast(target: Any, pollers: int = 1000, messages: int = 3, deadline: float = 300.0,
              dsn: str | None = None, server_pid: int | None = None, progress: bool = False) -> dict[str, Any]:
    """N pollers on one channel, one message at a time: how long until the last poller
    has it, and how many statements the server ran per broadcast."""
    run = Run(target, "broadcast", dsn, server_pid, progress)

    def body() -> dict[str, Any]:
        last = run.prime()
        channel = run.channel(0)
        run.start_pollers(pollers, lambda index: [channel], last)
        if not run.wait_held():
            run.tally.error("http: pollers not all held")
        run.extra["broadcasts"] = _broadcasts(run, channel, messages)
        return run.result(channels=1)

    return _guarded(run, deadline, body)


def _broadcasts(run: Run, channel: str, messages: int) -> dict[str, Any]:
    """Send `messages` broadcasts one by one, each once every poller waits again."""
    everyone = [poller.index for poller in run.pollers]
    sender = run.target.sender()
    last_poller: list[float] = []
    run.statements.start()
    cpu = _CpuUse(run.server_pid)
    try:
        for _ in range(messages):
            first = run.seq + 1
            if run.send(sender, channel, everyone):
                run.wait_delivered(10.0)
                got = run.tally.got[first]
                if len(got) == len(everyone):
                    last_poller.append(run.tally.last_receipt - run.tally.stamps[first])
            run.wait_held(within=30.0)  # every poller waits again: its re-poll is in the count
    finally:
        sender.close()
    result: dict[str, Any] = {"last_poller_ms": [round(seconds * 1000, 1) for seconds in last_poller],
                              **cpu.used(messages)}
    sql = run.statements.stop()
    if sql and messages:
        if "total" in sql:
            result["sql_per_broadcast"] = round(sql["total"] / messages, 1)
        result["fetch_per_broadcast"] = round(sql["fetch"] / messages, 1)
    return result


class _CpuUse:
    """CPU seconds used by the server (with its pid) and by the bench since creation:
    on a shared machine, tells which side bounds a run."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.server = cpu_seconds(server_pid) if server_pid else None
        self.bench = _own_cpu()

    def used(self, per: int) -> dict[str, float]:
        result = {"bench_cpu_ms_each": round((_own_cpu() - self.bench) * 1000 / max(per, 1), 1)}
        if self.server is not None and (now := cpu_seconds(self.server_pid)) is not None:
            result["server_cpu_ms_each"] = round((now - self.server) * 1000 / max(per, 1), 1)
        return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fanout(target: Any, pollers: int = 1000, channels: int = 1000, rate: float = 2000.0, duration: float = 10.0,
           senders: int = 8, deadline: float = 120.0, dsn: str | None = None, server_pid: int | None = None,
           progress: bool = False, churn: float = 0.0, name: str = "fanout") -> dict[str, Any]:
    """N pollers on M channels (poller i on channel i mod M); `rate` messages per
    second to random channels for `duration` s, from `senders` concurrent senders."""
    run = Run(target, name, dsn, server_pid, progress)

    def body() -> dict[str, Any]:
        last = run.prime()
        run.start_pollers(pollers, lambda index: [run.channel(index % channels)], last, churn)
        if not run.wait_held():
            run.tally.error("http: pollers not all held")
        audience = {run.channel(index): [] for index in range(channels)}
        for poller in run.pollers:
            audience[poller.channels[0]].append(poller.index)
        run.statements.start()
        sampler = gevent.spawn(_sample_server, run, 1.0) if run.server_pid else None
        begun = time.monotonic()
        _send_at_rate(run, audience, rate, duration, senders)
        sent_in = time.monotonic() - begun
        run.wait_delivered()
        if sampler is not None:
            sampler.kill()
        run.statements.stop()
        run.extra["send_rate"] = round(run.tally.sends / sent_in, 1) if sent_in else None
        if churn:
            run.extra["reconnects"] = sum(poller.reconnects for poller in run.pollers)
        return run.result(channels=channels, rate=rate, duration=duration, senders=senders)

    return _guarded(run, deadline, body)


def _send_at_rate(run: Run, audience: dict[str, list[int]], rate: float, duration: float, senders: int) -> None:
    """Message k is due at start + k / rate; `senders` greenlets take the due ones."""
    total = int(rate * duration)
    names = list(audience)
    start = time.monotonic()
    counter = iter(range(total))

    def work() -> None:
        sender = run.target.sender()
        try:
            for k in counter:
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                channel = random.choice(names)
                run.send(sender, channel, audience[channel])
        finally:
            sender.close()

    gevent.joinall([gevent.spawn(work) for _ in range(senders)])


def _sample_server(run: Run, every: float) -> None:
    """Server memory, CPU and held polls over time, into `run.extra['samples']`."""
    samples = run.extra.setdefault("samples", [])
    meter = CpuMeter(run.server_pid)
    while True:
        gevent.sleep(every)
        samples.append({"t": round(time.monotonic() - run.started, 1), "rss_mb": rss_mb(run.server_pid),
                        "cpu_percent": meter.percent(), "waiters": run.target.waiters()})


def idle(target: Any, pollers: int = 1000, hold: float = 10.0, deadline: float = 300.0, dsn: str | None = None,
         server_pid: int | None = None, progress: bool = False) -> dict[str, Any]:
    """N polls held open for `hold` s: the server's memory and CPU; then one broadcast."""
    run = Run(target, "idle", dsn, server_pid, progress)

    def body() -> dict[str, Any]:
        last = run.prime()
        channel = run.channel(0)
        before = rss_mb(server_pid) if server_pid else None
        run.start_pollers(pollers, lambda index: [channel], last)
        if not run.wait_held():
            run.tally.error("http: pollers not all held")
        gevent.sleep(1.0)  # let connection set-up finish before measuring
        if server_pid:
            meter = CpuMeter(server_pid)
            gevent.sleep(hold)
            run.extra.update(rss_before_mb=before, rss_held_mb=rss_mb(server_pid), cpu_idle_percent=meter.percent())
        else:
            gevent.sleep(hold)
            run.extra["server"] = "n/a: no --server-pid"
        run.extra["broadcasts"] = _broadcasts(run, channel, 1)
        return run.result(channels=1, hold=hold)

    return _guarded(run, deadline, body)


def soak(target: Any, pollers: int = 200, channels: int = 50, rate: float = 200.0, duration: float = 60.0,
         churn: float = 0.3, senders: int = 4, deadline: float | None = None, dsn: str | None = None,
         server_pid: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Senders and churning pollers (some polls abandoned mid-wait, then resumed with
    their last id) for `duration` s: memory sampled over time must stay flat, and
    nothing may be lost, duplicated or fail."""
    result = fanout(target, pollers, channels, rate, duration, senders, deadline or duration + 120.0, dsn,
                    server_pid, progress, churn, name="soak")
    samples = [sample["rss_mb"] for sample in result.get("samples", []) if sample["rss_mb"] is not None]
    if samples:
        half = samples[len(samples) // 2:]
        result["rss_mb"] = {"first": samples[0], "last": samples[-1], "max": max(samples),
                            "growth_second_half": round(half[-1] - half[0], 1)}
    return result


def late(target: Any, messages: int = 50, deadline: float = 120.0, dsn: str | None = None,
         server_pid: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Out-of-order commits, one at a time: a transaction takes an id, a later send
    commits first and the poller moves past that id, then the transaction commits. Its
    row must still arrive (stock Odoo 14 loses it for good); the latency of those rows
    runs from just before their commit to receipt. The held transaction writes to the
    server's database directly, so `dsn` is required."""
    if not dsn:
        raise ValueError("the late scenario writes to the server's database: give its --dsn")
    run = Run(target, "late", dsn, server_pid, progress)
    held_back: list[float] = []

    def body() -> dict[str, Any]:
        channel, poller = run.lone_poller()

        def one(sender: Any) -> None:
            if (latency := _late_commit(run, poller, sender, channel, dsn)) is not None:
                held_back.append(latency)

        run.rounds(messages, one)
        run.extra["late_ms"] = summary(held_back)
        return run.result(channels=1)

    return _guarded(run, deadline, body)


def _late_commit(run: Run, poller: Poller, sender: Any, channel: str, dsn: str) -> float | None:
    """One round; returns the late row's commit-to-receipt time, None if it did not come."""
    with contextlib.closing(psycopg2.connect(dsn)) as held:
        with held.cursor() as cr:
            (row_id,) = store.insert(cr, [(channel, "held")])  # its id is taken now, visible at commit
        if not run.send(sender, channel, [0]) or not _has(run, poller, run.seq):
            return None  # the poller is not past the held id: no out-of-order commit to time
        run.seq += 1
        message = run.tally.message(run.seq)
        with held.cursor() as cr:
            cr.execute("UPDATE bus_bus SET message = %s WHERE id = %s", [json_dump(message), row_id])
        held.commit()
    with contextlib.closing(psycopg2.connect(with_dbname(dsn, "postgres"))) as announcer:
        announcer.autocommit = True
        with announcer.cursor() as cr:
            notify.notify(cr, [channel])
    run.tally.sent(run.seq, [0], message["at"], time.monotonic() - message["at"])
    return run.tally.last_receipt - message["at"] if _has(run, poller, run.seq) else None


def _has(run: Run, poller: Poller, seq: int, within: float = 5.0) -> bool:
    """Wait until `poller` has message `seq` (an answer may come without it)."""
    deadline = time.monotonic() + within
    while poller.index not in run.tally.got.get(seq, ()):
        poller.arrived.clear()
        if not poller.arrived.wait(max(deadline - time.monotonic(), 0)):
            return False
    return True
