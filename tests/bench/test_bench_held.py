"""`python -m imbus.bench.held`: a held poll's memory, measured on a real gevent server."""

import subprocess
import sys

from imbus.bench.held import measure


def test_held_polls_grow_the_servers_memory():
    figures = measure(300, 0)
    assert figures["polls"] == 300 and figures["depth"] == 0
    assert figures["rss_held_mb"] > figures["rss_before_mb"]
    assert 1 < figures["kb_per_poll"] < 500, figures


def test_the_command_prints_one_line_per_depth():
    done = subprocess.run([sys.executable, "-m", "imbus.bench.held", "--polls", "100", "--depth", "0", "5"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert [line.count('"depth"') for line in done.stdout.splitlines()] == [1, 1]
