"""`python -m imbus.bench.sends`: what the commit-order trigger costs senders.

Creates a scratch database on the cluster of `--dsn` (its role needs CREATEDB), with a
`bus_bus` table, and measures sends there as the standalone sender makes them (INSERT
committed, then NOTIFY on `postgres`), first without the trigger (as main had it and
stock Odoo has it), then with it (`ordering.install`). For each number of concurrent
senders (separate processes, one connection pair each): sends per second and the time
a send takes, p50/p99/max (the max is the longest a send waited). The database is
dropped at the end.

  python -m imbus.bench.sends --dsn "host=/var/run/postgresql dbname=postgres" --senders 1 16

With `fsync` on, commits that insert take turns under the trigger's lock (one WAL flush
each instead of one per group): run it against the PostgreSQL you deploy on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import time
import uuid
from typing import Any

import psycopg2
import psycopg2.extensions

from .. import notify, ordering, store
from ..db import with_dbname
from .stats import summary


def connect(dsn: str) -> Any:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def _sender(dsn: str, notify_dsn: str, start: Any, stop_at: Any, results: Any, index: int) -> None:
    """One sender process: sends until `stop_at`, then reports its send times."""
    with contextlib.closing(connect(dsn)) as conn, contextlib.closing(connect(notify_dsn)) as announcer:
        cr, ncr = conn.cursor(), announcer.cursor()
        times = []
        start.wait()
        deadline = stop_at.value
        while time.monotonic() < deadline:
            begun = time.monotonic()
            store.insert(cr, [(f"sends.{index}", {"n": len(times)})])
            notify.notify(ncr, [f"sends.{index}"])
            times.append(time.monotonic() - begun)
    results.put(times)


def measure(dsn: str, senders: int, duration: float) -> dict[str, Any]:
    """`senders` processes sending for `duration` s: rate and send times."""
    context = multiprocessing.get_context("fork")
    start, stop_at, results = context.Event(), context.Value("d", 0.0), context.Queue()
    notify_dsn = with_dbname(dsn, "postgres")
    processes = [context.Process(target=_sender, args=(dsn, notify_dsn, start, stop_at, results, index))
                 for index in range(senders)]
    for process in processes:
        process.start()
    time.sleep(0.5)  # let every sender connect before the clock starts
    stop_at.value = time.monotonic() + duration
    start.set()
    times = [t for _ in processes for t in results.get(timeout=duration + 60)]
    for process in processes:
        process.join(10)
    return {"senders": senders, "sends": len(times), "sends_per_s": round(len(times) / duration, 1),
            "send_ms": summary(times)}


def run(dsn: str, counts: list[int], duration: float) -> list[dict[str, Any]]:
    scratch = f"imbus_sends_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(connect(with_dbname(dsn, "postgres"))) as admin, admin.cursor() as cr:
        cr.execute(f'CREATE DATABASE "{scratch}"')
        cr.execute("SHOW fsync")
        fsync = cr.fetchone()[0]
        cr.execute("SHOW synchronous_commit")
        synchronous = cr.fetchone()[0]
    target = with_dbname(dsn, scratch)
    results = []
    try:
        with contextlib.closing(connect(target)) as conn, conn.cursor() as cr:
            cr.execute(store.CREATE_TABLE)
        for trigger in (False, True):
            if trigger:
                with contextlib.closing(connect(target)) as conn, conn.cursor() as cr:
                    ordering.install(cr)
            for count in counts:
                result = measure(target, count, duration)
                result.update(trigger=trigger, fsync=fsync, synchronous_commit=synchronous)
                results.append(result)
    finally:
        with contextlib.closing(connect(with_dbname(dsn, "postgres"))) as admin, admin.cursor() as cr:
            cr.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return results


def line(result: dict[str, Any]) -> str:
    times = result["send_ms"]
    return (f"{'with' if result['trigger'] else 'without':<8} {result['senders']:>7} {result['sends_per_s']:>9.1f}"
            f" {times['p50']:>8.2f} {times['p99']:>8.2f} {times['max']:>8.2f}"
            f"   fsync={result['fsync']} synchronous_commit={result['synchronous_commit']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m imbus.bench.sends", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="a cluster whose role may create databases")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 16], help="concurrent senders, one run each")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of sending per run")
    parser.add_argument("--json", action="store_true", help="also print one JSON object per run")
    args = parser.parse_args(argv)
    print("trigger  senders   sends/s  p50(ms)  p99(ms)  max(ms)", flush=True)
    for result in run(args.dsn, args.senders, args.duration):
        print(line(result), flush=True)
        if args.json:
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
