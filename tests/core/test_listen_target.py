"""Which key chooses the listener's host and port: ours, then bus_alt_connection's, then
the database settings; and the log text never carries a password."""

import psycopg2
import pytest

from imbus.listen_target import resolve

ODOO = {'host': 'pgbouncer', 'port': 6432, 'user': 'odoo', 'password': 'secret', 'database': 'postgres'}
DSN = 'host=direct port=5433 dbname=postgres user=odoo password=secret'


def test_database_settings_by_default():
    target = resolve({}, {}, ODOO)
    assert (target.dsn, target.params) == (None, ODOO)
    assert target.describe() == 'host pgbouncer port 6432 (host from db_host/db_port, port from db_host/db_port)'


@pytest.mark.parametrize(('config', 'environ', 'source'), [
    ({'imbus_listen_dsn': DSN}, {}, 'imbus_listen_dsn (config)'),
    ({'imbus_listen_dsn': DSN, 'imdispatcher_db_host': 'alt'}, {'IMBUS_LISTEN_DSN': 'host=other'},
     'imbus_listen_dsn (config)'),
    ({'imbus_listen_dsn': ''}, {'IMBUS_LISTEN_DSN': DSN, 'ODOO_IMDISPATCHER_DB_HOST': 'alt'},
     'IMBUS_LISTEN_DSN (environment)'),
])
def test_our_dsn_wins_over_everything(config, environ, source):
    target = resolve(config, environ, ODOO)
    assert target.dsn in (DSN, environ.get('IMBUS_LISTEN_DSN'))
    assert target.describe() == f'host direct port 5433 (host from {source}, port from {source})'
    assert 'secret' not in target.describe()


def test_alt_config_keys_replace_host_and_port_only():
    target = resolve({'imdispatcher_db_host': 'db-01', 'imdispatcher_db_port': '5432'}, {}, ODOO)
    assert target.dsn is None
    assert target.params == {**ODOO, 'host': 'db-01', 'port': '5432'}
    assert target.describe() == ('host db-01 port 5432 (host from imdispatcher_db_host (config), '
                                 'port from imdispatcher_db_port (config))')


def test_alt_environment_before_alt_config_as_bus_alt_connection_reads_them():
    target = resolve({'imdispatcher_db_host': 'from-config', 'imdispatcher_db_port': '5001'},
                     {'ODOO_IMDISPATCHER_DB_HOST': 'from-env'}, ODOO)
    assert (target.params['host'], target.params['port']) == ('from-env', '5001')
    assert target.sources == {'host': 'ODOO_IMDISPATCHER_DB_HOST (environment)',
                              'port': 'imdispatcher_db_port (config)'}


def test_empty_values_do_not_count():
    target = resolve({'imbus_listen_dsn': '', 'imdispatcher_db_host': '', 'imdispatcher_db_port': False},
                     {'IMBUS_LISTEN_DSN': '', 'ODOO_IMDISPATCHER_DB_PORT': ''}, ODOO)
    assert (target.dsn, target.params) == (None, ODOO)


def test_local_socket_and_default_port_are_named():
    assert resolve({}, {}, {'database': 'postgres'}).describe().startswith('host local socket port 5432 ')


def test_the_chosen_port_is_where_the_connection_goes(pg):
    """An alt port that nothing listens on makes the connection fail on that port: the
    override reaches libpq, it is not just logged."""
    params = psycopg2.extensions.parse_dsn(pg.dsn)
    target = resolve({}, {'ODOO_IMDISPATCHER_DB_HOST': '127.0.0.1', 'ODOO_IMDISPATCHER_DB_PORT': '1'}, params)
    with pytest.raises(psycopg2.OperationalError, match='port 1'):
        psycopg2.connect(**target.params, connect_timeout=5)
    working = resolve({}, {}, params)
    psycopg2.connect(**working.params).close()
