"""Where the LISTEN connection goes, from configuration and environment.

LISTEN needs a real session, so behind a transaction-pooling PgBouncer the listener
must reach PostgreSQL some other way. Two spellings exist in the field: ours (a whole
DSN) and the one of OCA's `bus_alt_connection` (host and port only), which operators
keep when they move to this addon. Precedence, first set wins:

1. `imbus_listen_dsn` (config), then `IMBUS_LISTEN_DSN` (environment): the whole DSN;
2. for host and port each: `ODOO_IMDISPATCHER_DB_HOST` / `_PORT` (environment), then
   `imdispatcher_db_host` / `_port` (config), in that order as `bus_alt_connection`
   reads them;
3. the database settings the caller passes (Odoo's `db_host` / `db_port`).
"""

from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

from psycopg2.extensions import parse_dsn

DSN_KEYS = (('config', 'imbus_listen_dsn'), ('environment', 'IMBUS_LISTEN_DSN'))
DEFAULT_SOURCE = 'db_host/db_port'


def alt_keys(part: str) -> Tuple[Tuple[str, str], ...]:
    """`bus_alt_connection`'s keys for `part` ('host' or 'port'), in its order."""
    return (('environment', 'ODOO_IMDISPATCHER_DB_' + part.upper()), ('config', 'imdispatcher_db_' + part))


class ListenTarget(NamedTuple):
    """Connection arguments for the listener and what chose them, for the log."""

    dsn: Optional[str]            # a whole DSN, or None: connect with `params`
    params: Dict[str, Any]        # the caller's settings with host/port overridden
    sources: Dict[str, str]       # 'host' / 'port' -> the key that chose it

    def describe(self) -> str:
        """'host H port P (H from KEY, P from KEY)' without any password."""
        values = dict(self.params)
        if self.dsn is not None:
            values = parse_dsn(self.dsn)
        host = values.get('host') or 'local socket'
        port = values.get('port') or 5432
        return f"host {host} port {port} (host from {self.sources['host']}, port from {self.sources['port']})"


def _first(pairs: Tuple[Tuple[str, str], ...], config: Mapping[str, Any],
           environ: Mapping[str, str]) -> Tuple[Any, Optional[str]]:
    for where, key in pairs:
        value = (config if where == 'config' else environ).get(key)
        if value:
            return value, f'{key} ({where})'
    return None, None


def resolve(config: Mapping[str, Any], environ: Mapping[str, str],
            database: Mapping[str, Any]) -> ListenTarget:
    """The listener's target; `database` holds the regular connection's arguments."""
    dsn, source = _first(DSN_KEYS, config, environ)
    if dsn:
        return ListenTarget(dsn, {}, {'host': source, 'port': source})
    params = dict(database)
    sources = {}
    for part in ('host', 'port'):
        value, source = _first(alt_keys(part), config, environ)
        if value:
            params[part] = value
        sources[part] = source or DEFAULT_SOURCE
    return ListenTarget(None, params, sources)
