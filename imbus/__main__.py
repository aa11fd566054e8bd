"""`python -m imbus serve`: the standalone long-polling server and its demo page."""

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from .options import GC_PERIOD, MAX_BODY, Options

MINIMUM_PYTHON = (3, 10)  # the pinned gevent, greenlet and psycopg2-binary of requirements.txt


def main() -> None:
    if sys.version_info < MINIMUM_PYTHON:
        sys.exit("python -m imbus needs Python {}.{} or newer (the versions pinned in requirements.txt do);"
                 " this is Python {}.{}".format(*MINIMUM_PYTHON, *sys.version_info[:2]))

    parser = argparse.ArgumentParser(prog="python -m imbus", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve /longpolling/poll and the demo page")
    run.add_argument("--dsn", default=os.environ.get("BUS_DSN"),
                     help="PostgreSQL database (default: $BUS_DSN, else an embedded PostgreSQL)")
    run.add_argument("--listen-dsn", default=os.environ.get("IMBUS_LISTEN_DSN"),
                     help="connection for LISTEN, e.g. past PgBouncer (default: the postgres database)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8072)
    run.add_argument("--workers", type=int, default=1,
                     help="processes sharing the port (SO_REUSEPORT), restarted when they die")
    run.add_argument("--data-dir", type=Path, default=Path(".imbus-data"),
                     help="where the embedded PostgreSQL keeps its data")
    run.add_argument("--send-token", default=os.environ.get("IMBUS_SEND_TOKEN"),
                     help="require 'Authorization: Bearer TOKEN' on /longpolling/send")
    run.add_argument("--max-body", type=int, default=MAX_BODY, help="largest request body, in bytes")
    run.add_argument("--gc-period", type=float, default=GC_PERIOD,
                     help="seconds between deletions of rows older than 100 s")
    args = parser.parse_args()
    if not _loopback(args.host) and not args.send_token:
        parser.error("--send-token is required when serving beyond the loopback interface")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    from . import standalone_db

    with standalone_db.database(args.dsn, args.data_dir.resolve()) as dsn:
        options = Options(dsn, args.listen_dsn, args.host, args.port, args.send_token, args.max_body, args.gc_period)
        if args.workers == 1:
            serve_patched(options)
        else:
            from .workers import supervise

            supervise(options, args.workers, serve_patched)


def serve_patched(options: Options, *serve_args: object) -> None:
    """Patch the process for gevent, then serve: nothing the server uses may be imported
    before (a worker is forked from a parent that never imports gevent)."""
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    from .lifecycle import serve

    serve(options, *serve_args)


def _loopback(host: str) -> bool:
    """Only `localhost` and loopback addresses: a name like `127.example.com` may resolve anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    main()
