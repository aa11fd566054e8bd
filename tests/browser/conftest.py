"""Fixtures of the browser suite: Debian's headless Chromium driven by Playwright.

Only the system browser is used (never a downloaded one). If it is missing and we
run as root, it is installed with apt-get; if it cannot be had, every browser test
is SKIPPED with a loud message, never passed.

Playwright delivers its events (requests, console) only while Playwright runs, so
tests wait with `page.wait_for_timeout` / `wait_for_function`, never `time.sleep`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from browser_helpers import DemoPage, Polls

CHROMIUM = os.environ.get("BUS_CHROMIUM", "/usr/bin/chromium")  # Debian's package; override to test the skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HERE = Path(__file__).resolve().parent

_chromium_problem: str | None = None


# -- getting the browser ----------------------------------------------------------

def _apt_install_chromium() -> str | None:
    """Installs Debian's chromium; returns why it failed, or None."""
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    for attempt in (install, ["apt-get", "update", "-q"], install):
        try:
            result = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{' '.join(attempt)}: {error}"
        if attempt is install and result.returncode == 0:
            return None
    return f"apt-get install chromium failed: {result.stderr[-500:]}"


def _ensure_chromium() -> str | None:
    """Returns None when the system Chromium is there (installing it if needed)."""
    if os.path.exists(CHROMIUM):
        return None
    problem = _apt_install_chromium()
    if problem is None and os.path.exists(CHROMIUM):
        return None
    return problem or f"{CHROMIUM} still missing after apt-get"


def _playwright_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed: {error}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before any browser test runs: make sure Chromium is there, else skip them all loudly."""
    global _chromium_problem
    mine = [item for item in items if HERE in Path(str(item.fspath)).parents]
    if not mine:
        return
    for item in mine:
        item.add_marker(pytest.mark.browser)
    _chromium_problem = _playwright_problem() or _ensure_chromium()
    if _chromium_problem is None:
        return
    message = f"BROWSER TESTS SKIPPED: no usable Chromium ({_chromium_problem})"
    warnings.warn(message, stacklevel=1)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("!" * 20 + " " + message + " " + "!" * 20, red=True, bold=True)
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=message))


# -- browser, contexts, pages -----------------------------------------------------

@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (its own localStorage): the "browser" of one user."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def polls(context: Any) -> Polls:
    return Polls(context)


@pytest.fixture
def open_demo(context: Any) -> Callable[..., DemoPage]:
    """Factory: `open_demo(srv, query="")` opens the demo page in a new tab of `context`."""

    def open_page(srv: Any, query: str = "") -> DemoPage:
        page = context.new_page()
        demo = DemoPage(page)
        page.goto(f"{srv.url}/{query}")
        page.wait_for_function("window.demo && demo.bus.registered", timeout=10000)
        return demo

    return open_page


