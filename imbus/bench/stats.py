"""Accounting of one run: who should get what, who got what, how late, what failed.

Every message carries its sequence number and the sender's stamp (`time.monotonic()`
taken just before the send call: pollers run in the same process, so they share that
clock). Latency is receipt minus stamp: an upper bound of commit-to-receipt that
includes the send request itself (INSERT, COMMIT, NOTIFY, answer).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, Iterable


def percentile(values: list[float], rank: float) -> float | None:
    """Nearest-rank percentile of `values` (0 < rank <= 100), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(rank / 100 * len(ordered)) - 1, 0)]


def summary(latencies: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max in milliseconds."""
    ordered = sorted(latencies)
    result = {f"p{rank}": percentile(ordered, rank) for rank in (50, 90, 99)}
    result["max"] = ordered[-1] if ordered else None
    return {name: None if value is None else round(value * 1000, 3) for name, value in result.items()}


MAX_SAMPLES = 5


class Tally:
    """Expected and actual deliveries of one run.

    `sent(seq, recipients)` says which pollers must get message `seq`;
    `received(poller, message)` records one delivery. A delivery of a message a poller
    already had is a duplicate; one of a message it was not meant to get is a stray;
    an expected delivery that never came is lost.
    """

    def __init__(self) -> None:
        self.expected: dict[int, frozenset[int]] = {}
        self.stamps: dict[int, float] = {}
        self.got: dict[int, set[int]] = {}
        self.latencies: list[float] = []
        self.duplicated = 0
        self.stray = 0
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []  # the first few error messages, to tell what went wrong
        self.first_stamp: float | None = None
        self.last_receipt: float | None = None
        self.sends = 0
        self.send_seconds: list[float] = []

    def message(self, seq: int) -> dict[str, Any]:
        """The body to send for `seq`, stamped now."""
        stamp = time.monotonic()
        if self.first_stamp is None:
            self.first_stamp = stamp
        return {"seq": seq, "at": stamp}

    def sent(self, seq: int, recipients: Iterable[int], stamp: float, took: float) -> None:
        self.expected[seq] = frozenset(recipients)
        self.stamps[seq] = stamp
        self.got.setdefault(seq, set())
        self.sends += 1
        self.send_seconds.append(took)

    def received(self, poller: int, message: Any, now: float) -> None:
        seq = message.get("seq") if isinstance(message, dict) else None
        if not isinstance(seq, int):
            self.stray += 1
            return
        got = self.got.setdefault(seq, set())
        if poller in got:
            self.duplicated += 1
            return
        got.add(poller)
        self.last_receipt = now
        self.latencies.append(now - message["at"])

    def error(self, kind: str, detail: object = None) -> None:
        self.errors[kind] += 1
        if detail is not None and len(self.samples) < MAX_SAMPLES:
            self.samples.append(f"{kind}: {detail}"[:300])

    def outstanding(self) -> int:
        """Expected deliveries not (yet) received."""
        return sum(len(recipients - self.got[seq]) for seq, recipients in self.expected.items())

    def delivered(self) -> int:
        return sum(len(recipients & self.got[seq]) for seq, recipients in self.expected.items())

    def unexpected(self) -> int:
        """Deliveries to pollers a message was not meant for (or of unknown messages)."""
        extra = sum(len(got - self.expected.get(seq, frozenset())) for seq, got in self.got.items())
        return extra + self.stray

    def report(self) -> dict[str, Any]:
        delivered = self.delivered()
        span = (self.last_receipt - self.first_stamp) if self.last_receipt and self.first_stamp else 0.0
        return {
            "sent": self.sends,
            "expected": sum(len(recipients) for recipients in self.expected.values()),
            "delivered": delivered,
            "lost": self.outstanding(),
            "duplicated": self.duplicated,
            "unexpected": self.unexpected(),
            "latency_ms": summary(self.latencies),
            "send_ms": summary(self.send_seconds),
            "delivered_per_s": round(delivered / span, 1) if span > 0 else None,
            "http_errors": sum(n for kind, n in self.errors.items() if kind.startswith("http")),
            "rpc_errors": sum(n for kind, n in self.errors.items() if kind.startswith("rpc")),
            "errors": dict(self.errors),
            "error_samples": self.samples,
        }
