"""Resident memory and CPU time of the server process, read from /proc (Linux)."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """Resident set size in MiB, None when the process is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter:
    """CPU use of a process between two readings, as a percentage of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu = cpu_seconds(pid)
        self.wall = time.monotonic()

    def percent(self) -> float | None:
        cpu, wall = cpu_seconds(self.pid), time.monotonic()
        if cpu is None or self.cpu is None or wall <= self.wall:
            return None
        used = (cpu - self.cpu) / (wall - self.wall) * 100
        self.cpu, self.wall = cpu, wall
        return round(used, 1)
