"""The bus inside Odoo's gevent (long-polling) process: fast re-polls, bounded cursors.

What it does. With `--workers`, Odoo runs `/longpolling/*` in one gevent process whose
requests share one connection pool (`db_maxconn`). Once the addon's Python is imported
there (the first request of a database loads it), `install()` changes the running
gevent server, once per process:
- its handler class becomes a subclass of Odoo's (`imbus.gevent_handler`): TCP_NODELAY
  on every accepted connection (no ~40 ms Nagle delay per answer), the standalone
  server's cheaper parsing and sending, and the client's socket in the environ, so a
  waiting poll whose client hangs up is freed at once;
- its application is wrapped by `middleware.FastPath`: a re-poll of a session whose
  channels Odoo resolved less than 50 s ago is answered from the dispatcher without
  Odoo's dispatch (no cursor), and so is a send from such a session (`send`); a poll
  Odoo resolves waits in the middleware once Odoo's request is over; every other
  request enters Odoo through a gate that lets at most `bus_fastpath_gate` requests in
  at once (the others queue), and a poll leaves it when it starts waiting;
- `upkeep.Upkeep` watches registry reloads and writes the fast polls' presence.

Threaded `odoo-bin` (no workers) is left as it is: each request has its own thread
there, and the tests' HTTP server is that one.

Configuration (odoo.conf): `bus_fastpath_gate`, how many requests may be inside Odoo's
dispatch at once in the gevent process; default (db_maxconn - the bus's own cursors) / 2,
room for two connections per request (code in a request may open a second cursor of
its own, as `registry.cursor()` does).

Logs: one INFO line when installed (`bus: fast path installed in the gevent server ...`);
see `middleware` and `upkeep` for the rest. `GET /longpolling/health` on the gevent
port answers the counters (waiting polls, fast and slow polls, gate occupancy).
"""

import logging
from typing import Any, Optional

import odoo
from odoo.tools import config

from ..imbus.gate import Gate
from ..imbus.gevent_handler import polling_handler
from ..models.bus import dispatch
from .middleware import FastPath
from .upkeep import Upkeep

_logger = logging.getLogger(__name__)


def gate_limit() -> int:
    configured = config.get('bus_fastpath_gate')
    if configured:
        return max(1, int(configured))
    maxconn = int(config['db_maxconn'])
    return max(1, (maxconn - dispatch.database.limit) // 2)


def install(server: Any = None) -> Optional[FastPath]:
    """Put the fast path into the running gevent server (`odoo.service.server.server`);
    does nothing outside the gevent process, or when it is already in."""
    if server is None:
        if not odoo.evented:
            return None
        server = getattr(odoo.service.server, 'server', None)
    httpd = getattr(server, 'httpd', None)
    if httpd is None or dispatch is None:
        _logger.warning("bus: no gevent server to install the fast path into")
        return None
    if isinstance(httpd.application, FastPath):
        return httpd.application
    fastpath = FastPath(httpd.application, dispatch, Gate(gate_limit()))
    httpd.handler_class = polling_handler(httpd.handler_class)
    httpd.application = fastpath
    Upkeep(fastpath).start()
    _logger.info("bus: fast path installed in the gevent server (%s, gate of %d requests)",
                 httpd.handler_class.__name__, fastpath.gate.limit)
    return fastpath


install()
