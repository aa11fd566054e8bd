"""Helpers of the browser suite: watching polls, reading the demo page, waiting."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

POLL_PATH = "/longpolling/poll"
FAST_RETRY = {"ERROR_RETRY_DELAY": 300, "ERROR_RETRY_JITTER": 0}


def fast_retry(ctx: Any, **extra: Any) -> None:
    """Shortens the core's retry delay (the documented `imbusSettings` knob)."""
    ctx.add_init_script(f"window.imbusSettings = {json.dumps({**FAST_RETRY, **extra})};")


class Polls:
    """Every `/longpolling/poll` request of a browser context, as the browser sent it."""

    def __init__(self, ctx: Any) -> None:
        self.sent: list[dict] = []
        self.in_flight: dict[Any, Any] = {}
        self.most_in_flight = 0
        self.failed: list[Any] = []
        ctx.on("request", self._on_request)
        ctx.on("requestfinished", self._on_end)
        ctx.on("requestfailed", self._on_end)

    def _on_request(self, request: Any) -> None:
        if not request.url.endswith(POLL_PATH):
            return
        page = request.frame.page
        self.sent.append({"page": page, "params": request.post_data_json["params"], "at": time.monotonic(),
                          "request": request})
        self.in_flight[request] = page
        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))

    def _on_end(self, request: Any) -> None:
        self.in_flight.pop(request, None)
        if request.failure:
            self.failed.append(request)

    def reset_peak(self) -> None:
        self.most_in_flight = len(self.in_flight)

    def pages_polling(self) -> list[Any]:
        return list(self.in_flight.values())

    def since(self, moment: float) -> list[dict]:
        return [poll for poll in self.sent if poll["at"] >= moment]


class DemoPage:
    """The demo page (`GET /`) in one tab, and what its bus received."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def is_master(self) -> bool:
        return self.js("demo.bus.isMasterTab()")

    def last(self) -> int:
        return self.js("demo.bus.last")

    def received(self) -> list[dict]:
        return self.js("demo.received.map(r => ({id: r.id, channel: r.channel, message: r.message,"
                       " latency: r.latency}))")

    def received_ids(self) -> list[int]:
        return [entry["id"] for entry in self.received()]

    def wait_received(self, count: int, timeout: float = 5000) -> list[dict]:
        self.page.wait_for_function(f"demo.received.length >= {count}", timeout=timeout)
        return self.received()

    def wait(self, ms: float) -> None:
        self.page.wait_for_timeout(ms)


def wait_for_one_master(pages: list[DemoPage], timeout: float = 15.0) -> DemoPage:
    """Waits until exactly one of `pages` is master; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        masters = [page for page in pages if page.is_master()]
        if len(masters) == 1:
            return masters[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(masters)} master tabs after {timeout} s")
        pages[0].wait(50)


def wait_until(pages: list[Any], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Waits for `condition` while letting Playwright deliver its events (pages: DemoPage or Page)."""
    page = getattr(pages[0], "page", pages[0])
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(50)


def now_ms() -> float:
    return time.time() * 1000
