"""`wait_for`, the one way the pytest suites wait for a condition another process or
thread brings about: checked often, failing with a message once its bound is spent."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], within: float = 10, message: str = "condition not met in time") -> Any:
    """Poll `predicate` until it is truthy and return its value; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(0.01)
