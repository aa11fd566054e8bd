"""`bus.presence.update` (rate limit, quiet conflicts) and the computed `im_status`."""

import contextlib
import datetime
import logging
from unittest.mock import patch

from odoo import api, fields
from odoo.addons.bus.models.bus_presence import AWAY_TIMER, DISCONNECTION_TIMER, BusPresence
from odoo.tests import TransactionCase


@contextlib.contextmanager
def logged_warnings(name, level=logging.WARNING):
    """The records of logger `name` at `level` or worse (`assertNoLogs` needs Python 3.10,
    and `assertLogs` captures nothing once Odoo has set up its logging)."""
    records = []
    handler = logging.Handler(level)
    handler.emit = records.append
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


class TestPresenceUpdate(TransactionCase):
    """`update` commits (the poll route closes its cursor next), so these tests run it on
    cursors of their own and remove the admin's presence row afterwards."""

    def setUp(self):
        super().setUp()
        self.user_id = self.env.ref('base.user_admin').id
        self.drop_presence()
        self.addCleanup(self.drop_presence)

    def drop_presence(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM bus_presence WHERE user_id = %s", [self.user_id])

    def set_presence(self, poll_ago, presence_ago):
        with self.registry.cursor() as cr:
            cr.execute(
                """UPDATE bus_presence
                      SET last_poll = now() AT TIME ZONE 'UTC' - make_interval(secs => %s),
                          last_presence = now() AT TIME ZONE 'UTC' - make_interval(secs => %s)
                    WHERE user_id = %s RETURNING last_poll, last_presence""",
                [poll_ago, presence_ago, self.user_id])
            return cr.fetchone()

    def presence(self):
        with self.registry.cursor() as cr:
            cr.execute("SELECT last_poll, last_presence FROM bus_presence WHERE user_id = %s",
                       [self.user_id])
            return cr.fetchone()

    def update(self, inactivity_ms=0):
        with self.registry.cursor() as cr:
            api.Environment(cr, self.user_id, {})['bus.presence'].update(inactivity_ms)

    def assertRecent(self, value, seconds=5):
        self.assertLess(abs((fields.Datetime.now() - value).total_seconds()), seconds)

    def test_first_update_creates_the_row(self):
        self.update(60_000)
        last_poll, last_presence = self.presence()
        self.assertRecent(last_poll)
        self.assertRecent(last_presence - datetime.timedelta(seconds=-60))

    def test_rate_limited(self):
        """A poll right after another writes nothing; one later moves `last_poll`."""
        self.update()
        before = self.set_presence(1, 1)
        self.update()
        self.assertEqual(self.presence(), before)
        before = self.set_presence(10, 1)
        self.update()
        last_poll, last_presence = self.presence()
        self.assertRecent(last_poll, 2)
        self.assertEqual(last_presence, before[1])

    def test_activity_moves_last_presence(self):
        self.update()
        self.set_presence(1, 600)  # polled a second ago, idle for ten minutes
        self.update(0)  # ... and now active again
        self.assertRecent(self.presence()[1], 2)

    def test_presence_never_moves_back(self):
        self.update(0)
        self.set_presence(10, 0)
        _poll, presence = self.presence()
        self.update(600_000)  # another tab, idle for ten minutes
        self.assertEqual(self.presence()[1], presence)

    def test_concurrent_update_is_swallowed_quietly(self):
        """Two tabs polling at once: the loser's serialization failure is rolled back,
        nothing is raised or logged, and the cursor stays usable."""
        self.update()
        self.set_presence(60, 60)
        errors = []
        original = BusPresence._update

        def spy(model, inactivity_period):
            try:
                return original(model, inactivity_period)
            except Exception as error:
                errors.append(error)
                raise

        cr = self.registry.cursor()
        try:
            env = api.Environment(cr, self.user_id, {})
            self.assertTrue(env['bus.presence'].search([('user_id', '=', self.user_id)]).last_poll)  # snapshot
            winner = self.set_presence(0, 0)  # the other tab commits first
            with patch.object(BusPresence, '_update', spy), logged_warnings('odoo') as warnings:
                env['bus.presence'].update(0)
            cr.execute("SELECT 1")
        finally:
            cr.close()
        self.assertEqual([getattr(e, 'pgcode', None) for e in errors], ['40001'])
        self.assertEqual([record.getMessage() for record in warnings], [])
        self.assertEqual(self.presence(), winner)

    def test_other_errors_are_raised(self):
        with self.assertRaises(TypeError):
            self.update('not a number')


class TestImStatus(TransactionCase):

    def setUp(self):
        super().setUp()
        Users = self.env['res.users'].with_context(no_reset_password=True)
        self.users = {
            name: Users.create({'name': f'Bus {name}', 'login': f'bus_status_{name}'})
            for name in ('online', 'away', 'gone', 'never', 'archived')
        }
        self.presence('online', poll_ago=10, presence_ago=10)
        self.presence('away', poll_ago=10, presence_ago=AWAY_TIMER + 60)
        self.presence('gone', poll_ago=DISCONNECTION_TIMER + 10, presence_ago=DISCONNECTION_TIMER + 10)
        self.presence('archived', poll_ago=1, presence_ago=1)
        self.users['archived'].active = False

    def presence(self, name, poll_ago, presence_ago):
        now = fields.Datetime.now()
        self.env['bus.presence'].create({
            'user_id': self.users[name].id,
            'last_poll': now - datetime.timedelta(seconds=poll_ago),
            'last_presence': now - datetime.timedelta(seconds=presence_ago),
        })

    def test_users(self):
        statuses = {name: user.im_status for name, user in self.users.items()}
        self.assertEqual(statuses, {
            'online': 'online', 'away': 'away', 'gone': 'offline', 'never': 'offline',
            'archived': 'online',
        })

    def test_partners(self):
        statuses = {name: user.partner_id.im_status for name, user in self.users.items()}
        self.assertEqual(statuses, {
            'online': 'online', 'away': 'away', 'gone': 'offline', 'never': 'offline',
            'archived': 'im_partner',  # no active user behind it
        })
        contact = self.env['res.partner'].create({'name': 'Just a contact'})
        self.assertEqual(contact.im_status, 'im_partner')

    def test_partner_takes_its_freshest_user(self):
        second = self.env['res.users'].with_context(no_reset_password=True).create({
            'name': 'Bus second login', 'login': 'bus_status_second',
            'partner_id': self.users['gone'].partner_id.id,
        })
        self.env['bus.presence'].create({'user_id': second.id})
        self.assertEqual(self.users['gone'].partner_id.im_status, 'online')

    def test_new_records(self):
        self.assertEqual(self.env['res.partner'].new({'name': 'draft'}).im_status, 'im_partner')
        self.assertEqual(self.env['res.users'].new({'name': 'draft'}).im_status, 'offline')
