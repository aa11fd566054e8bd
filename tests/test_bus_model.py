"""`bus.bus` inside a real Odoo: stored rows, one batched create, NOTIFY after commit,
the model-level poll and the garbage collection."""

import contextlib
import inspect
import json
import logging
import select
import threading
import time
import uuid
from unittest.mock import patch

import odoo
import psycopg2
from odoo import SUPERUSER_ID, api
from odoo.addons.base.models.ir_autovacuum import is_autovacuum
from odoo.addons.bus.models import bus as bus_module
from odoo.addons.bus.models.bus import TIMEOUT, ImBus, OdooDatabase, hashable, json_dump
from odoo.tests import TransactionCase

from .test_presence import logged_warnings


def unique_channel(prefix='bus-test'):
    return f'{prefix}-{uuid.uuid4().hex[:12]}'


@contextlib.contextmanager
def committed_env(registry, uid=SUPERUSER_ID):
    """An environment on a fresh cursor that commits at the end (the test transaction
    never does, and NOTIFY only follows a real commit)."""
    with registry.cursor() as cr:
        yield api.Environment(cr, uid, {})


def purge_channels(registry, channels):
    with registry.cursor() as cr:
        cr.execute("DELETE FROM bus_bus WHERE channel IN %s", [tuple(json_dump(c) for c in channels)])


@contextlib.contextmanager
def listening():
    """A LISTEN imbus connection; yields a function returning the payloads received."""
    conn = OdooDatabase().listen_connection()
    conn.autocommit = True
    try:
        with conn.cursor() as cr:
            cr.execute("LISTEN imbus")

        def received(mark, expect=1, timeout=5.0):
            """Payloads mentioning `mark` (other databases of the cluster notify too)."""
            payloads, deadline = [], time.monotonic() + timeout
            while len(payloads) < expect and time.monotonic() < deadline:
                if select.select([conn], [], [], max(deadline - time.monotonic(), 0))[0]:
                    conn.poll()
                    payloads.extend(note.payload for note in conn.notifies if mark in note.payload)
                    del conn.notifies[:]
            return payloads

        yield received
    finally:
        conn.close()


class TestHelpers(TransactionCase):

    def test_public_names(self):
        """Names other addons import keep their Odoo 14 meaning."""
        self.assertEqual(TIMEOUT, 50)
        self.assertEqual(json_dump(('db', 'res.partner', 3)), '["db","res.partner",3]')
        self.assertEqual(json_dump({'z': 1, 'a': 2}), '{"z":1,"a":2}')
        self.assertEqual(hashable(['db', 'res.partner', 3]), ('db', 'res.partner', 3))
        # threaded and gevent servers wait for notifications; prefork HTTP workers don't
        if odoo.multi_process and not odoo.evented:
            self.assertIsNone(bus_module.dispatch)
        else:
            self.assertIsInstance(bus_module.dispatch, bus_module.ImDispatch)


class TestOdooDatabase(TransactionCase):
    """The dispatcher's cursors: Odoo's pool, committed on success, bounded in number."""

    def test_commit_and_rollback(self):
        database, dbname = OdooDatabase(), self.env.cr.dbname
        channel = unique_channel()
        try:
            with database.cursor(dbname) as cr:
                cr.execute("INSERT INTO bus_bus (channel, message) VALUES (%s, '1')", [json_dump(channel)])
            with self.assertRaises(ZeroDivisionError), database.cursor(dbname) as cr:
                cr.execute("INSERT INTO bus_bus (channel, message) VALUES (%s, '2')", [json_dump(channel)])
                1 / 0  # noqa: B018
            with database.cursor(dbname) as cr:
                cr.execute("SELECT message FROM bus_bus WHERE channel = %s", [json_dump(channel)])
                self.assertEqual(cr.fetchall(), [('1',)])
        finally:
            purge_channels(self.registry, [channel])

    def test_cursors_are_bounded(self):
        """Waking crowds queue for a cursor instead of draining the request pool."""
        database, dbname = OdooDatabase(max_cursors=2), self.env.cr.dbname
        entered = threading.Event()

        def third():
            with database.cursor(dbname) as cr:
                cr.execute("SELECT 1")
                entered.set()

        with database.cursor(dbname), database.cursor(dbname):
            waiting = threading.Thread(target=third)
            waiting.start()
            self.assertFalse(entered.wait(0.3))
        self.assertTrue(entered.wait(5))
        waiting.join(5)


def postgres_dsn(application_name):
    """Odoo's own settings on the `postgres` database, as one DSN."""
    _db, info = odoo.sql_db.connection_info_for('postgres')
    parts = [f"{key if key != 'database' else 'dbname'}={value}" for key, value in info.items()]
    return ' '.join([*parts, f'application_name={application_name}'])


class TestListenConnection(TransactionCase):
    """The LISTEN connection can bypass a transaction-pooling PgBouncer."""

    def dsn(self, application_name):
        return postgres_dsn(application_name)

    def application_name(self):
        conn = OdooDatabase().listen_connection()
        try:
            with conn.cursor() as cr:
                cr.execute("SELECT current_database(), current_setting('application_name')")
                return cr.fetchone()
        finally:
            conn.close()

    def test_default_is_odoo_settings_on_postgres(self):
        with patch.dict(odoo.tools.config.options, imbus_listen_dsn=''), \
                patch.dict('os.environ', {'IMBUS_LISTEN_DSN': ''}):
            self.assertEqual(self.application_name(), ('postgres', bus_module.listener_name()))

    def test_config_key(self):
        with patch.dict(odoo.tools.config.options, imbus_listen_dsn=self.dsn('imbus-from-config')):
            self.assertEqual(self.application_name(), ('postgres', 'imbus-from-config'))

    def test_environment_variable(self):
        with patch.dict(odoo.tools.config.options, imbus_listen_dsn=''), \
                patch.dict('os.environ', {'IMBUS_LISTEN_DSN': self.dsn('imbus-from-env')}):
            self.assertEqual(self.application_name(), ('postgres', 'imbus-from-env'))


BUS_LOGGER = 'odoo.addons.bus.models.bus'
NO_DSN = {'imbus_listen_dsn': '', 'imdispatcher_db_host': '', 'imdispatcher_db_port': ''}
NO_DSN_ENV = {'IMBUS_LISTEN_DSN': '', 'ODOO_IMDISPATCHER_DB_HOST': '', 'ODOO_IMDISPATCHER_DB_PORT': ''}


class TestAltConnectionKeys(TransactionCase):
    """The keys of OCA's `bus_alt_connection` move our listener too (nothing listens on
    ports 1 and 2 here, so the refused connection names the port libpq was given)."""

    def connect_error(self, config=(), environ=()):
        with patch.dict(odoo.tools.config.options, {**NO_DSN, **dict(config)}), \
                patch.dict('os.environ', {**NO_DSN_ENV, **dict(environ)}), \
                logged_warnings(BUS_LOGGER, logging.INFO) as logs, \
                self.assertRaises(psycopg2.OperationalError) as refused:
            OdooDatabase().listen_connection()
        return str(refused.exception), [record.getMessage() for record in logs]

    def test_config_keys(self):
        error, logs = self.connect_error({'imdispatcher_db_host': '127.0.0.1', 'imdispatcher_db_port': '1'})
        self.assertIn('port 1', error)
        self.assertEqual(len(logs), 1)
        self.assertIn('listener connects to host 127.0.0.1 port 1 (host from imdispatcher_db_host (config), '
                      'port from imdispatcher_db_port (config))', logs[0])

    def test_environment_before_config_as_that_addon_reads_them(self):
        error, logs = self.connect_error({'imdispatcher_db_host': '127.0.0.1', 'imdispatcher_db_port': '2'},
                                         {'ODOO_IMDISPATCHER_DB_PORT': '1'})
        self.assertIn('port 1', error)
        self.assertIn('port from ODOO_IMDISPATCHER_DB_PORT (environment)', logs[0])

    def test_our_dsn_first(self):
        with patch.dict(odoo.tools.config.options, {**NO_DSN, 'imdispatcher_db_port': '1'}), \
                patch.dict('os.environ', {**NO_DSN_ENV, 'IMBUS_LISTEN_DSN': postgres_dsn('ours')}):
            conn = OdooDatabase().listen_connection()
        try:
            with conn.cursor() as cr:
                cr.execute("SELECT current_setting('application_name')")
                self.assertEqual(cr.fetchone(), ('ours',))
        finally:
            conn.close()

    def test_logged_once_not_at_each_reconnect(self):
        database = OdooDatabase()
        with patch.dict(odoo.tools.config.options, NO_DSN), patch.dict('os.environ', NO_DSN_ENV), \
                logged_warnings(BUS_LOGGER, logging.INFO) as logs:
            for _attempt in range(2):
                database.listen_connection().close()
        self.assertEqual(len(logs), 1)
        self.assertIn('from db_host/db_port', logs[0].getMessage())


class TestAltConnectionInstalled(TransactionCase):
    """What `bus_alt_connection` does on import, redone here: its subclass of `ImDispatch`
    becomes `dispatch` in the model and the controller. Once the registry is loaded ours
    is back, so the process keeps the one dispatcher the fast path holds."""

    def test_swap_is_undone_when_the_registry_is_ready(self):
        from odoo.addons.bus.controllers import main as controller

        own_class, own = bus_module.OWN

        class AltDispatch(own_class):
            def loop(self):
                raise AssertionError("our dispatcher never calls loop()")

        saved = (bus_module.ImDispatch, bus_module.dispatch, controller.dispatch)
        try:
            bus_module.ImDispatch = AltDispatch
            bus_module.dispatch = controller.dispatch = AltDispatch()
            with logged_warnings(BUS_LOGGER, logging.INFO) as logs:
                self.env['bus.bus']._register_hook()
            self.assertIn('ours put back', logs[0].getMessage())
            self.assertIs(bus_module.ImDispatch, own_class)
            self.assertIs(bus_module.dispatch, own)
            self.assertIs(controller.dispatch, own)
            self.assertFalse(bus_module.restore_own_dispatch(), "nothing left to undo")
        finally:
            bus_module.ImDispatch, bus_module.dispatch, controller.dispatch = saved


class TestSend(TransactionCase):

    def rows(self, *channels):
        return self.env['bus.bus'].sudo().search(
            [('channel', 'in', [json_dump(c) for c in channels])], order='id')

    def test_sendone_stores_json(self):
        channel = (self.env.cr.dbname, 'res.partner', 3)
        self.env['bus.bus'].sendone(channel, {'type': 'x', 'when': odoo.fields.Date.to_date('2020-01-02')})
        row = self.rows(channel)
        self.assertEqual(len(row), 1)
        self.assertEqual(row.channel, json_dump(list(channel)))
        self.assertEqual(json.loads(row.message), {'type': 'x', 'when': '2020-01-02'})
        self.assertEqual(row.create_uid.id, SUPERUSER_ID)

    def test_sendmany_is_one_create(self):
        """One `create` with every row, so code patching `ImBus.create` sees them all."""
        notifications = [[f'c{i}', {'n': i}] for i in range(5)]
        with patch.object(ImBus, 'create', autospec=True, side_effect=ImBus.create) as create:
            self.env['bus.bus'].sendmany(notifications)
        self.assertEqual(create.call_count, 1)
        vals_list = create.call_args[0][1]
        self.assertEqual([vals['channel'] for vals in vals_list], [json_dump(f'c{i}') for i in range(5)])
        self.assertEqual(len(self.rows(*[f'c{i}' for i in range(5)])), 5)

    def test_sendmany_empty_does_nothing(self):
        with patch.object(ImBus, 'create', autospec=True) as create:
            self.env['bus.bus'].sendmany([])
        create.assert_not_called()
        self.assertNotIn(bus_module.PENDING_KEY, self.env.cr.postcommit.data)

    def test_creator_is_the_sender(self):
        """Rows keep the sending user as creator (mail's tests look rows up by it)."""
        demo = self.env['res.users'].create({'name': 'Bus Sender', 'login': 'bus_sender'})
        self.env['bus.bus'].with_user(demo).sendone('from-demo', 1)
        self.assertEqual(self.rows('from-demo').create_uid, demo)

    def test_one_notify_per_transaction(self):
        """Every send of a transaction shares one post-commit NOTIFY, channels deduplicated."""
        self.env['bus.bus'].sendone('a', 1)
        self.env['bus.bus'].sendmany([['b', 2], [('db', 'x', 1), 3], ['a', 4]])
        pending = self.env.cr.postcommit.data[bus_module.PENDING_KEY]
        self.assertEqual(list(pending), [json_dump('a'), json_dump('b'), json_dump(('db', 'x', 1))])


class TestNotify(TransactionCase):
    """NOTIFY imbus on the `postgres` database, after a real commit only."""

    def test_notify_after_commit(self):
        channel = unique_channel()
        private = (self.env.cr.dbname, 'res.partner', 424242)
        try:
            with listening() as received:
                with committed_env(self.registry) as env:
                    env['bus.bus'].sendmany([[channel, 'hello'], [private, {'a': 1}]])
                    self.assertEqual(received(channel, timeout=0.3), [], "NOTIFY must wait for the commit")
                payloads = received(channel)
            self.assertEqual(len(payloads), 1)
            self.assertEqual(json.loads(payloads[0]), [channel, list(private)])
        finally:
            purge_channels(self.registry, [channel, private])

    def test_no_notify_on_rollback(self):
        channel = unique_channel()
        with listening() as received:
            cr = self.registry.cursor()
            try:
                api.Environment(cr, SUPERUSER_ID, {})['bus.bus'].sendone(channel, 1)
                cr.rollback()
            finally:
                cr.close()
            self.assertEqual(received(channel, timeout=0.5), [])

    def test_large_sendmany_is_split(self):
        """Stock Odoo raises past 8000 bytes of payload; here the NOTIFY is split."""
        prefix = unique_channel()
        channels = [f'{prefix}-{i:04d}-' + 'x' * 100 for i in range(300)]
        try:
            with listening() as received:
                with committed_env(self.registry) as env:
                    env['bus.bus'].sendmany([[channel, i] for i, channel in enumerate(channels)])
                payloads, deadline = [], time.monotonic() + 10
                while len({c for p in payloads for c in json.loads(p)}) < len(channels) \
                        and time.monotonic() < deadline:
                    payloads += received(prefix, timeout=0.5)
            self.assertGreater(len(payloads), 1)
            self.assertTrue(all(len(p.encode()) < 8000 for p in payloads))
            announced = [c for p in payloads for c in json.loads(p)]
            self.assertEqual(sorted(announced), sorted(channels))
        finally:
            purge_channels(self.registry, channels)


class TestPoll(TransactionCase):
    """`bus.bus.poll`: what a long-poll returns at once."""

    def setUp(self):
        super().setUp()
        self.bus = self.env['bus.bus']
        self.db = self.env.cr.dbname

    def test_first_poll_returns_recent_rows(self):
        self.bus.sendmany([['gold', {'a': 1}], ['other', 2], [(self.db, 'res.partner', 3), 'p']])
        result = self.bus.poll(['gold', (self.db, 'res.partner', 3)])
        self.assertEqual([(n['channel'], n['message']) for n in result],
                         [('gold', {'a': 1}), ([self.db, 'res.partner', 3], 'p')])
        self.assertEqual(result, sorted(result, key=lambda n: n['id']))

    def test_last_returns_newer_rows_only(self):
        self.bus.sendone('gold', 1)
        first = self.bus.poll(['gold'])[-1]['id']
        self.bus.sendone('gold', 2)
        self.bus.sendone('gold', 3)
        self.assertEqual([n['message'] for n in self.bus.poll(['gold'], last=first)], [2, 3])

    def test_first_poll_ignores_old_rows(self):
        self.bus.sendone('gold', 'old')
        self.env.cr.execute(
            "UPDATE bus_bus SET create_date = create_date - interval '60 seconds' WHERE channel = %s",
            [json_dump('gold')])
        self.bus.sendone('gold', 'new')
        self.assertEqual([n['message'] for n in self.bus.poll(['gold'])], ['new'])
        # an explicit `last` still reaches older rows
        self.assertEqual([n['message'] for n in self.bus.poll(['gold'], last=1)][-2:], ['old', 'new'])

    def test_list_and_tuple_channels_match(self):
        self.bus.sendone((self.db, 'mail.channel', 7), 'hi')
        self.assertEqual(len(self.bus.poll([[self.db, 'mail.channel', 7]])), 1)

    def test_string_spelling_a_private_channel_gets_nothing(self):
        """A browser can only name strings; '["db","res.partner",3]' is not the partner's channel."""
        self.bus.sendone((self.db, 'res.partner', 3), 'secret')
        self.assertEqual(self.bus.poll([json_dump((self.db, 'res.partner', 3))]), [])
        self.assertEqual(self.bus.poll([str((self.db, 'res.partner', 3))]), [])
        self.assertEqual(len(self.bus.poll([(self.db, 'res.partner', 3)])), 1)

    def test_no_channels(self):
        self.bus.sendone('gold', 1)
        self.assertEqual(self.bus.poll([]), [])


class TestGarbageCollection(TransactionCase):

    def test_gc_drops_old_rows_only(self):
        bus = self.env['bus.bus']
        bus.sendone('gc-old', 1)
        bus.sendone('gc-new', 2)
        self.env.cr.execute(
            "UPDATE bus_bus SET create_date = create_date - make_interval(secs => %s) WHERE channel = %s",
            [2 * TIMEOUT + 10, json_dump('gc-old')])
        bus._gc_messages()
        left = bus.sudo().search([('channel', 'in', [json_dump('gc-old'), json_dump('gc-new')])])
        self.assertEqual(left.mapped('channel'), [json_dump('gc-new')])

    def test_ir_autovacuum_selects_the_gc(self):
        # ir.autovacuum's daily run calls the members of each model that its is_autovacuum
        # picks; running it here would commit, so the selection alone is checked
        picked = [name for name, _ in inspect.getmembers(self.env.registry['bus.bus'], is_autovacuum)]
        self.assertIn('_gc_messages', picked)
