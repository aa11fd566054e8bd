"""The `bus.bus` model and the process-wide dispatcher, as Odoo 14's addons expect them.

Other addons import from here: `TIMEOUT`, `json_dump`, `hashable`, `ImBus` (mail's tests
patch `ImBus.create`), `ImDispatch` and `dispatch`. The SQL and the waiting live in the
framework-free core (`imbus/`); this module only feeds it Odoo cursors and connections.

Configuration (odoo.conf or environment):
- `imbus_listen_dsn` / `IMBUS_LISTEN_DSN`: libpq DSN for the LISTEN connection when the
  regular one goes through a transaction-pooling PgBouncer (LISTEN needs a real session).
- else `ODOO_IMDISPATCHER_DB_HOST` / `_PORT` or `imdispatcher_db_host` / `_port`, the keys
  of OCA's `bus_alt_connection` (precedence in `imbus/listen_target.py`).
- else Odoo's own `db_*` settings, on the `postgres` database.
"""

import contextlib
import logging
import os
import sys
import threading
from typing import Any, Iterable, Iterator, Optional

import odoo
import psycopg2
from odoo import api, fields, models
from odoo.tools import config

from ..imbus import listen_target, store
from ..imbus import ordering as imbus_ordering
from ..imbus.channels import TIMEOUT, hashable, json_dump
from ..imbus.dispatcher import Database, Dispatcher
from ..imbus.notifier import Notifier

__all__ = ['TIMEOUT', 'ImBus', 'ImDispatch', 'OdooDatabase', 'dispatch', 'hashable', 'json_dump']

_logger = logging.getLogger(__name__)

# key of the channels gathered for the NOTIFY sent once the transaction commits
PENDING_KEY = 'bus.bus.channels'
SEND_ACCESS = ('off', 'user', 'public')


def send_access() -> str:
    """Who may post on `/longpolling/send` (config `bus_send_access`; see the route)."""
    value = (config.get('bus_send_access') or 'user').strip().lower()
    return value if value in SEND_ACCESS else 'user'


def notify_channels(channels: list) -> None:
    """Wake the pollers of `channels` in every process (NOTIFY on the `postgres` database,
    through the process's kept connection: `imbus.notifier`).

    Runs after the commit: a failure here must not turn a committed request into an
    error. The rows are safe; waiting pollers get them late, with the next NOTIFY of
    their database or the next listener reconnection.
    """
    try:
        notifier.notify(channels)
    except Exception:
        _logger.exception("bus: NOTIFY imbus failed for %d channel(s)", len(channels))


def notify_connection() -> Any:
    """Where Odoo itself sends the NOTIFY: its `db_*` settings, on `postgres`."""
    return psycopg2.connect(**odoo.sql_db.connection_info_for('postgres')[1],
                            application_name=f'odoo-bus-notify-{os.getpid()}')


notifier = Notifier(notify_connection)


class ImBus(models.Model):
    _name = 'bus.bus'
    _description = 'Communication Bus'

    channel = fields.Char('Channel')
    message = fields.Char('Message')

    def init(self) -> None:
        """Odoo calls this on install and on `-u bus`: ids in commit order (see `ordering`)."""
        imbus_ordering.install(self.env.cr)

    def _register_hook(self) -> None:
        """Runs once every addon of the registry is imported, `bus_alt_connection` too."""
        super()._register_hook()
        restore_own_dispatch()

    @api.autovacuum
    def _gc_messages(self) -> int:
        """Drop rows older than twice the poll timeout, on the database's clock; clients
        that far behind reload."""
        self.flush()
        count = store.gc(self.env.cr)
        self.invalidate_cache()
        return count

    @api.model
    def sendmany(self, notifications: Iterable) -> None:
        """Store `[(channel, message), ...]` in one `create` and NOTIFY after commit.

        The NOTIFY must wait for the commit, or the woken pollers would find nothing.
        All `sendmany` calls of one transaction share a single NOTIFY.
        """
        vals_list = []
        channels = []
        for channel, message in notifications:
            vals_list.append({'channel': json_dump(channel), 'message': json_dump(message)})
            channels.append(channel)
        if not vals_list:
            return
        self.sudo().create(vals_list)

        postcommit = self.env.cr.postcommit
        pending = postcommit.data.get(PENDING_KEY)
        if pending is None:
            pending = postcommit.data[PENDING_KEY] = {}

            @postcommit.add
            def notify():
                notify_channels(list(pending.values()))

        for channel in channels:
            pending.setdefault(json_dump(channel), channel)

    @api.model
    def sendone(self, channel: Any, message: Any) -> None:
        self.sendmany([[channel, message]])

    @api.model
    def poll(self, channels: list, last: int = 0, options: Optional[dict] = None) -> list:
        """Rows of `channels` after id `last` (or of the last TIMEOUT seconds when 0), no waiting."""
        self.flush()
        return store.fetch(self.env.cr, channels, last)


class OdooDatabase(Database):
    """The core's `Database`, backed by Odoo's connection pool and `db_*` settings.

    The pool (`db_maxconn`, 64 by default) also serves every HTTP request of the
    process, so the bus takes at most `max_cursors` of it at once: a crowd of waking
    polls then queues for a moment instead of failing with "Connection Pool Is Full".
    """

    def __init__(self, max_cursors: Optional[int] = None) -> None:
        self.limit = max_cursors or min(8, max(1, int(config['db_maxconn']) // 4))
        self.slots = threading.BoundedSemaphore(self.limit)  # gevent's, in the gevent process
        self.announced = False  # the target is logged at the first connection, not at each reconnect

    @contextlib.contextmanager
    def cursor(self, dbname: str) -> Iterator[Any]:
        # Odoo cursors commit on a clean `with` exit and roll back (close) otherwise
        with self.slots, odoo.sql_db.db_connect(dbname).cursor() as cr:
            yield cr

    def announce(self, payloads) -> None:
        notifier.announce(payloads)  # Odoo's pool would open a new connection to `postgres` each time

    def listen_connection(self):
        # named after the process, so operators (and tests) can spot it in pg_stat_activity
        name = listener_name()
        target = listen_target.resolve(config.options, os.environ, odoo.sql_db.connection_info_for('postgres')[1])
        if not self.announced:
            self.announced = True
            _logger.info("bus: listener connects to %s", target.describe())
        if target.dsn:
            return psycopg2.connect(target.dsn, fallback_application_name=name)
        return psycopg2.connect(**target.params, application_name=name)


def listener_name() -> str:
    return f'odoo-bus-listener-{os.getpid()}'


class ImDispatch(Dispatcher):
    """The core dispatcher wired to Odoo: one LISTEN connection per server process."""

    def __init__(self, database: Any = None, timeout: float = TIMEOUT) -> None:
        super().__init__(database or OdooDatabase(), timeout)

    def poll(self, dbname, channels, last, options=None, timeout=None, watch=None):
        if not odoo.evented:
            # A waiting poll must neither delay shutdown nor count as a running HTTP
            # request (tests wait for those; the time limits skip daemon threads).
            current = threading.current_thread()
            current._daemonic = True
            current.name = f'odoo.longpolling.request.{current.ident}'
        return super().poll(dbname, channels, last, options=options, timeout=timeout, watch=watch)


# HTTP workers of a prefork server never wait: polls go to the gevent process.
dispatch: Optional[ImDispatch] = None
if not odoo.multi_process or odoo.evented:
    dispatch = ImDispatch()
OWN = (ImDispatch, dispatch)


def restore_own_dispatch() -> bool:
    """Undo OCA `bus_alt_connection`'s swap; True if there was one to undo.

    On import that addon replaces `ImDispatch` and `dispatch` here and `dispatch` in the
    controller with its subclass, whose `loop()` our dispatcher never calls: a second,
    useless dispatcher beside the one the fast path holds. Our listener already honours
    its keys, so ours goes back in place and the process keeps one LISTEN connection.
    """
    from ..controllers import main as controller

    module = sys.modules[__name__]
    own_class, own = OWN
    if module.ImDispatch is own_class and module.dispatch is own and controller.dispatch is own:
        return False
    _logger.info("bus: dispatcher replaced by another addon (bus_alt_connection?); ours put back, "
                 "its listener honours imdispatcher_db_host/port")
    module.ImDispatch, module.dispatch, controller.dispatch = own_class, own, own
    return True
