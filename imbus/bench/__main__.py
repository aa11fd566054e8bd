"""Command line of the bench; see the package docstring."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any, Callable  # noqa: E402

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

from ..filelimit import raise_file_limit  # noqa: E402
from . import scenarios  # noqa: E402
from .report import header, row  # noqa: E402
from .targets import SEND_VIA, Odoo, Standalone  # noqa: E402

NAMES = ("pingpong", "broadcast", "fanout", "idle", "soak", "late")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m imbus.bench", description=sys.modules[__package__].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="+", choices=NAMES)
    parser.add_argument("--url", default="http://127.0.0.1:8072", help="the server (loopback only)")
    parser.add_argument("--send-token", help="bearer token of a standalone server's send route")
    parser.add_argument("--odoo-db", help="drive an Odoo 14 server: its database")
    parser.add_argument("--poll-url", help="Odoo with --workers: the longpolling port's URL (default: --url)")
    parser.add_argument("--odoo-send", choices=SEND_VIA, default="xmlrpc",
                        help="Odoo: send by XML-RPC execute_kw (default) or POST /longpolling/send with the session")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--dsn", help="the server's database, to read pg_stat_statements")
    parser.add_argument("--server-pid", type=int, help="the server process, to sample its RSS and CPU")
    parser.add_argument("--pollers", type=int, help="pollers (default per scenario)")
    parser.add_argument("--channels", type=int, help="channels for fanout/soak")
    parser.add_argument("--messages", type=int, help="messages for pingpong/broadcast/late")
    parser.add_argument("--rate", type=float, help="messages per second for fanout/soak")
    parser.add_argument("--senders", type=int, help="concurrent senders for fanout/soak")
    parser.add_argument("--duration", type=float, help="seconds of sending (fanout/soak) or holding (idle)")
    parser.add_argument("--churn", type=float, help="soak: share of polls abandoned mid-wait (0-1)")
    parser.add_argument("--deadline", type=float, help="seconds after which a scenario stops, whatever its state")
    parser.add_argument("--json", action="store_true", help="also print one JSON object per scenario")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def options(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The keyword arguments of scenario `name` that were given on the command line."""
    given = {"pollers": args.pollers, "channels": args.channels, "messages": args.messages, "rate": args.rate,
             "senders": args.senders, "churn": args.churn, "deadline": args.deadline}
    if args.duration is not None:
        given["hold" if name == "idle" else "duration"] = args.duration
    accepted = scenarios.__dict__[name].__code__.co_varnames
    kwargs = {key: value for key, value in given.items() if value is not None and key in accepted}
    return {**kwargs, "dsn": args.dsn, "server_pid": args.server_pid, "progress": not args.quiet}


def main(argv: list[str]) -> int:
    args = parse(argv)
    if "late" in args.scenario and not args.dsn:
        sys.exit("python -m imbus.bench: the late scenario needs --dsn (it holds a transaction open there)")
    raise_file_limit()
    if args.odoo_db:
        target: Any = Odoo(args.url, args.odoo_db, args.login, args.password, args.poll_url, args.odoo_send)
    else:
        target = Standalone(args.url, args.send_token)
    print(header(), flush=True)
    clean = True
    for name in args.scenario:
        run: Callable[..., dict] = getattr(scenarios, name)
        try:
            result = run(target, **options(args, name))
        except scenarios.PrimeFailed as error:
            sys.exit(f"python -m imbus.bench: {name}: {error}")
        print(row(result), flush=True)
        if args.json:
            print(json.dumps(result), flush=True)
        clean = clean and not (result["lost"] or result["duplicated"] or result["http_errors"]
                               or result["rpc_errors"] or result.get("timed_out"))
    return 0 if clean else 1


sys.exit(main(sys.argv[1:]))
