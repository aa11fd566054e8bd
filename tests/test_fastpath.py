"""The fast path (`fastpath.middleware.FastPath`) wrapped around Odoo's own WSGI
application, in Odoo: which polls it answers without Odoo, where a slow poll waits,
which sends it stores itself, what makes it hand a session back to Odoo, and the
presence it writes in batches.

The gevent process installs it by itself (`fastpath.install`); here it wraps
`odoo.http.root` in the test process and is driven by werkzeug's test client, so the
polls are Odoo's real routes on real cursors (test mode left for the test's duration).
Each test sends on channels of its own and removes them afterwards.
"""

import json
import uuid

import odoo
from odoo import SUPERUSER_ID, api
from odoo.addons.bus.fastpath.middleware import FastPath
from odoo.addons.bus.fastpath.upkeep import Upkeep
from odoo.addons.bus.imbus.gate import Gate
from odoo.addons.bus.models import bus as bus_module
from odoo.addons.bus.models.bus import json_dump
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger
from werkzeug.test import Client
from werkzeug.wrappers import BaseResponse


class WaitProbe:
    """The bus's dispatcher, noting for each poll whether an Odoo request was still
    open around it (Odoo's request stack) when it started waiting."""

    def __init__(self, dispatch):
        self.dispatch = dispatch
        self.database = dispatch.database
        self.inside_odoo = []

    def poll(self, *args, **kwargs):
        self.inside_odoo.append(odoo.http._request_stack.top is not None)
        return self.dispatch.poll(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.dispatch, name)


@tagged('post_install', '-at_install')
class TestFastPath(HttpCase):

    def setUp(self):
        super().setUp()
        self.db = self.env.cr.dbname
        self.channel = f'bus-fast-{uuid.uuid4().hex[:12]}'
        self.admin = self.env.ref('base.user_admin').id
        self.registry.leave_test_mode()
        self.addCleanup(self.registry.enter_test_mode, self.cr)
        self.addCleanup(self.purge)
        self.dispatch = WaitProbe(bus_module.dispatch)
        self.fastpath = FastPath(odoo.http.root, self.dispatch, Gate(4))
        self.client = Client(self.fastpath, BaseResponse)
        answer = self.rpc('/web/session/authenticate', {'db': self.db, 'login': 'admin', 'password': 'admin'})
        self.assertEqual(answer['result']['uid'], self.admin)
        # polls start past every row already there: mail's _poll adds the admin's partner
        # channel, which the other suites' tests may have notified within the last 50 s
        with self.registry.cursor() as cr:
            cr.execute("SELECT coalesce(max(id), 0) FROM bus_bus")
            [(self.start,)] = cr.fetchall()

    def purge(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM bus_bus WHERE channel = %s", [json_dump(self.channel)])

    def rpc(self, path, params):
        body = json.dumps({'jsonrpc': '2.0', 'method': 'call', 'params': params, 'id': 3})
        response = self.client.post(path, data=body, content_type='application/json',
                                    environ_base={'REMOTE_ADDR': '127.0.0.1'})  # Odoo's request needs it
        self.assertEqual(response.status_code, 200)
        return json.loads(response.get_data())

    def send(self, message):
        with self.registry.cursor() as cr:  # commits, then NOTIFY
            api.Environment(cr, SUPERUSER_ID, {})['bus.bus'].sendone(self.channel, message)

    def poll(self, last, **options):
        """A poll that finds its notification already there (sent before), so it answers at once."""
        answer = self.rpc('/longpolling/poll', {'channels': [self.channel], 'last': last, 'options': options})
        self.assertEqual(answer['id'], 3)
        return answer['result']

    def test_a_repoll_is_answered_without_odoo_and_gets_its_message(self):
        self.send('first')
        [first] = self.poll(self.start)
        self.assertEqual(first['message'], 'first')
        self.assertEqual(self.fastpath.counts['slow'], 1)
        self.assertEqual(self.fastpath.counts['recorded'], 1)
        self.send('second')
        [second] = self.poll(first['id'])
        self.assertEqual((second['channel'], second['message']), (self.channel, 'second'))
        self.assertEqual(self.fastpath.counts['fast'], 1)
        self.assertEqual(self.fastpath.counts['slow'], 1, "the re-poll did not enter Odoo")

    def test_polls_wait_once_odoos_request_is_over(self):
        self.send('first')
        [first] = self.poll(self.start)
        self.send('second')
        self.poll(first['id'])
        self.assertEqual((self.fastpath.counts['slow'], self.fastpath.counts['fast']), (1, 1))
        self.assertEqual(self.dispatch.inside_odoo, [False, False])

    def test_a_send_from_a_known_session_is_stored_without_odoo(self):
        self.send('first')
        [first] = self.poll(self.start)
        answer = self.rpc('/longpolling/send', {'channel': self.channel, 'message': {'text': 'hi'}})
        self.assertEqual(answer, {'jsonrpc': '2.0', 'id': 3})
        self.assertEqual(self.fastpath.counts['sent'], 1)
        self.assertEqual(self.fastpath.counts['other'], 1, "only the login went to Odoo")
        with self.registry.cursor() as cr:
            cr.execute("SELECT message, create_uid, write_uid, now() at time zone 'UTC' - create_date"
                       " FROM bus_bus WHERE channel = %s AND id > %s", [json_dump(self.channel), first['id']])
            [(message, create_uid, write_uid, age)] = cr.fetchall()
        self.assertEqual((json.loads(message), create_uid, write_uid), ({'text': 'hi'}, self.admin, self.admin))
        self.assertLess(age.total_seconds(), 5)
        [second] = self.poll(first['id'])
        self.assertEqual(second['message'], {'text': 'hi'})

    def test_sends_odoo_must_judge_go_to_odoo(self):
        self.send('first')
        self.poll(self.start)
        with mute_logger('odoo.http'):  # Odoo logs the refusals it answers
            refused = self.rpc('/longpolling/send', {'channel': [self.db, 'res.partner', 1], 'message': 'x'})
            incomplete = self.rpc('/longpolling/send', {'channel': self.channel})
        self.assertEqual(refused['error']['data']['message'], "bus.Bus only string channels are allowed.")
        self.assertEqual(incomplete['error']['data']['name'], 'builtins.TypeError')
        self.assertEqual(self.fastpath.counts['sent'], 0)
        self.assertEqual(self.fastpath.counts['other'], 3)

    def test_a_send_from_a_session_no_poll_resolved_goes_to_odoo(self):
        answer = self.rpc('/longpolling/send', {'channel': self.channel, 'message': 'by odoo'})
        self.assertNotIn('error', answer)
        self.assertEqual(self.fastpath.counts['sent'], 0)
        [only] = self.poll(self.start)
        self.assertEqual(only['message'], 'by odoo')

    def test_the_entry_holds_the_channels_odoos_overrides_added(self):
        self.send('first')
        self.poll(self.start)
        [entry] = self.fastpath.cache.entries.values()
        partner = self.env.ref('base.user_admin').partner_id.id
        self.assertEqual(entry.channels[0], self.channel)
        if 'mail.channel' in self.env:  # mail's _poll adds the user's partner channels
            self.assertIn((self.db, 'res.partner', partner), entry.channels)

    def test_after_logout_the_session_goes_back_to_odoo(self):
        self.send('first')
        [first] = self.poll(self.start)
        self.rpc('/web/session/destroy', {})
        self.send('second')
        [second] = self.poll(first['id'])
        self.assertEqual(second['message'], 'second')
        self.assertEqual(self.fastpath.counts['fast'], 0)
        self.assertEqual(self.fastpath.counts['slow'], 2)

    def test_fast_polls_presence_is_written_by_the_batch(self):
        self.send('first')
        [first] = self.poll(self.start, bus_inactivity=0)
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM bus_presence WHERE user_id = %s", [self.admin])
        self.send('second')
        self.poll(first['id'], bus_inactivity=60000)
        self.assertEqual(self.fastpath.counts['fast'], 1)
        self.assertEqual(list(self.fastpath.presence.pending), [(self.db, self.admin)])
        Upkeep(self.fastpath).flush_presence()
        with self.registry.cursor() as cr:
            cr.execute("SELECT now() at time zone 'UTC' - last_poll, last_poll - last_presence"
                       " FROM bus_presence WHERE user_id = %s", [self.admin])
            [(since_poll, inactive)] = cr.fetchall()
        self.assertLess(since_poll.total_seconds(), 5)
        self.assertAlmostEqual(inactive.total_seconds(), 60, delta=5)
