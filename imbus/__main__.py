"""`python -m imbus serve`: the standalone long-polling server and its demo page."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

from .server import GC_PERIOD, MAX_BODY, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m imbus", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve /longpolling/poll and the demo page")
    run.add_argument("--dsn", default=os.environ.get("BUS_DSN"),
                     help="PostgreSQL database (default: $BUS_DSN, else an embedded PostgreSQL)")
    run.add_argument("--listen-dsn", default=os.environ.get("IMBUS_LISTEN_DSN"),
                     help="connection for LISTEN, e.g. past PgBouncer (default: the postgres database)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8072)
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.dsn, args.listen_dsn, args.host, args.port, args.data_dir.resolve(), args.send_token,
          args.max_body, args.gc_period)


def _loopback(host: str) -> bool:
    """Only `localhost` and loopback addresses: a name like `127.example.com` may resolve anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


main()
