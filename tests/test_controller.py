"""The long-polling routes over real HTTP: refusals, send access, im_status, and a
real long-poll (outside test mode) woken by a send committed elsewhere."""

import json
import threading
import time
import unittest
import uuid
from unittest.mock import patch

import odoo
import requests
from odoo import SUPERUSER_ID, api
from odoo.addons.bus.controllers import misrouted
from odoo.addons.bus.imbus.ratelimit import OncePer
from odoo.addons.bus.models import bus as bus_module
from odoo.addons.bus.models.bus import json_dump
from odoo.tests import HOST, HttpCase, tagged
from odoo.tools import config, mute_logger

from .test_presence import logged_warnings

STRING_ONLY = "bus.Bus only string channels are allowed."


def envelope(params):
    return {'jsonrpc': '2.0', 'method': 'call', 'params': params, 'id': 7}


# `odoo-bin --workers=N --test-enable` runs the tests in the prefork master, where no
# HTTP server answers: HTTP tests can only run in a threaded server.
needs_http = unittest.skipIf(odoo.multi_process and not odoo.evented,
                             "prefork server: no HTTP server in the test process")


@tagged('post_install', '-at_install')
@needs_http
class TestRoutes(HttpCase):

    @mute_logger('odoo.http')  # refusals are logged as errors by the JSON dispatcher
    def rpc(self, path, params, timeout=10):
        response = self.url_open(path, data=json.dumps(envelope(params)),
                                 headers={'Content-Type': 'application/json'}, timeout=timeout)
        self.assertEqual(response.status_code, 200)
        return response.json()

    def assertError(self, answer, message, name='builtins.Exception', code=200):
        self.assertNotIn('result', answer)
        self.assertEqual(answer['error']['code'], code)
        self.assertEqual(answer['error']['data']['name'], name)
        self.assertEqual(answer['error']['data']['message'], message)

    def sent(self, channel):
        return self.env['bus.bus'].sudo().search([('channel', '=', json_dump(channel))])

    # -- /longpolling/poll ------------------------------------------------------

    def test_poll_refuses_non_string_channels(self):
        db = self.env.cr.dbname
        answer = self.rpc('/longpolling/poll', {'channels': [[db, 'res.partner', 3]], 'last': 0})
        self.assertError(answer, STRING_ONLY)
        answer = self.rpc('/longpolling/poll', {'channels': ['ok', {'a': 1}], 'last': 0})
        self.assertError(answer, STRING_ONLY)

    def test_poll_refused_in_test_mode(self):
        answer = self.rpc('/longpolling/poll', {'channels': ['gold'], 'last': 0, 'options': {}})
        self.assertError(answer, "bus.Bus not available in test mode",
                         name='odoo.exceptions.UserError')

    def test_poll_bad_arguments(self):
        """Stock answers these with a raw SQL error or an AttributeError; here, a clear refusal."""
        answer = self.rpc('/longpolling/poll', {'channels': ['gold'], 'last': 0, 'options': 5})
        self.assertIn('options', answer['error']['data']['message'])
        answer = self.rpc('/longpolling/poll', {'channels': ['gold'], 'last': 'abc', 'options': {}})
        self.assertIn('last', answer['error']['data']['message'])

    def test_poll_unavailable_without_dispatcher(self):
        """A poll misrouted to a prefork HTTP worker: the error says what to fix, and the
        process logs one warning a minute instead of a traceback per poll."""
        answers = []
        with patch('odoo.addons.bus.controllers.main.dispatch', None), \
                patch.object(misrouted, 'warnings', OncePer(60)), \
                logged_warnings('odoo.http') as dispatcher_logs, \
                logged_warnings('odoo.addons.bus.controllers.misrouted') as ours:
            for _poll in range(3):
                response = self.url_open('/longpolling/poll', timeout=10, headers={'Content-Type': 'application/json'},
                                         data=json.dumps(envelope({'channels': ['gold'], 'last': 0})))
                answers.append(response.json())
        for answer in answers:
            self.assertError(answer, misrouted.MESSAGE, name='odoo.addons.bus.controllers.misrouted.BusUnavailable')
        self.assertTrue(misrouted.MESSAGE.startswith("bus.Bus unavailable"), "the stock prefix stays")
        self.assertIn('--longpolling-port', misrouted.MESSAGE)
        self.assertEqual(dispatcher_logs, [])
        self.assertEqual(len(ours), 1)
        self.assertIn('Route /longpolling/ to the long-polling port', ours[0].getMessage())

    # -- /longpolling/send ------------------------------------------------------

    def test_send_default_needs_a_login(self):
        channel = 'send-default'
        answer = self.rpc('/longpolling/send', {'channel': channel, 'message': 1})
        self.assertError(answer, 'Session expired', name='odoo.http.SessionExpiredException', code=100)
        self.assertFalse(self.sent(channel))

        self.authenticate('admin', 'admin')
        answer = self.rpc('/longpolling/send', {'channel': channel, 'message': {'a': 1, 't': 'x'}})
        self.assertEqual(answer, {'jsonrpc': '2.0', 'id': 7})  # None: no `result` key
        self.assertEqual(self.sent(channel).message, '{"a":1,"t":"x"}')

    def test_send_public(self):
        with patch.dict(config.options, bus_send_access='public'):
            answer = self.rpc('/longpolling/send', {'channel': 'send-public', 'message': 'hi'})
        self.assertNotIn('error', answer)
        self.assertEqual(len(self.sent('send-public')), 1)

    def test_send_off(self):
        self.authenticate('admin', 'admin')
        with patch.dict(config.options, bus_send_access='off'):
            answer = self.rpc('/longpolling/send', {'channel': 'send-off', 'message': 'hi'})
        self.assertEqual(answer['error']['data']['name'], 'odoo.exceptions.AccessDenied')
        self.assertFalse(self.sent('send-off'))

    def test_send_refuses_non_string_channel(self):
        self.authenticate('admin', 'admin')
        db = self.env.cr.dbname
        answer = self.rpc('/longpolling/send', {'channel': [db, 'res.partner', 424242], 'message': 1})
        self.assertError(answer, STRING_ONLY)
        self.assertFalse(self.sent((db, 'res.partner', 424242)))

    # -- /longpolling/im_status -------------------------------------------------

    def test_im_status(self):
        partner = self.env.ref('base.partner_admin')
        answer = self.rpc('/longpolling/im_status', {'partner_ids': [partner.id]})
        self.assertError(answer, 'Session expired', name='odoo.http.SessionExpiredException', code=100)
        self.authenticate('admin', 'admin')
        answer = self.rpc('/longpolling/im_status', {'partner_ids': [partner.id]})
        self.assertEqual(answer['result'], [{'id': partner.id, 'im_status': partner.im_status}])


@tagged('post_install', '-at_install')
@needs_http
class TestRealLongPolling(HttpCase):
    """Leaves test mode for a while, so the route serves a real poll on real cursors.
    Everything these tests commit is on their own unique channels and removed after."""

    def setUp(self):
        super().setUp()
        self.db = self.env.cr.dbname
        self.channel = f'bus-http-{uuid.uuid4().hex[:12]}'
        self.registry.leave_test_mode()
        self.addCleanup(self.registry.enter_test_mode, self.cr)
        self.addCleanup(self.purge)

    def purge(self):
        keys = (json_dump(self.channel), json_dump((self.db, 'res.partner', 424242)))
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM bus_bus WHERE channel IN %s", [keys])

    @mute_logger('odoo.http')
    def post(self, path, params, timeout=10, session=None):
        url = f'http://{HOST}:{config["http_port"]}{path}'
        return (session or requests).post(url, json=envelope(params), timeout=timeout).json()

    def send(self, channel, message):
        with self.registry.cursor() as cr:  # commits, then NOTIFY
            api.Environment(cr, SUPERUSER_ID, {})['bus.bus'].sendone(channel, message)

    def idle_in_transaction(self):
        with self.registry.cursor() as cr:
            cr.execute("SELECT count(*) FROM pg_stat_activity"
                       " WHERE datname = %s AND state = 'idle in transaction'", [self.db])
            return cr.fetchone()[0]

    def test_poll_waits_and_wakes_on_send(self):
        dispatch = bus_module.dispatch
        before = self.idle_in_transaction()
        answers = []
        poller = threading.Thread(target=lambda: answers.append(self.post(
            '/longpolling/poll', {'channels': [self.channel], 'last': 0, 'options': {}}, timeout=60)))
        started = time.monotonic()
        poller.start()
        deadline = time.monotonic() + 10
        while dispatch.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(dispatch.waiting, 1, "the poll should be waiting")
        time.sleep(0.3)
        self.assertTrue(poller.is_alive())
        # the waiting request gave its database connection back
        self.assertLessEqual(self.idle_in_transaction(), before)

        self.send(self.channel, {'n': 1})
        poller.join(15)
        self.assertFalse(poller.is_alive())
        self.assertLess(time.monotonic() - started, 15)
        [answer] = answers
        self.assertEqual([(n['channel'], n['message']) for n in answer['result']], [(self.channel, {'n': 1})])

        # the next poll from that id waits again, and gets only the next message
        last = answer['result'][-1]['id']
        self.send(self.channel, 'second')
        answer = self.post('/longpolling/poll', {'channels': [self.channel], 'last': last})
        self.assertEqual([n['message'] for n in answer['result']], ['second'])

    def test_listener_reconnects(self):
        """A killed LISTEN connection comes back by itself; waiting polls still get woken."""
        dispatch = bus_module.dispatch
        answers = []
        poller = threading.Thread(target=lambda: answers.append(self.post(
            '/longpolling/poll', {'channels': [self.channel], 'last': 0, 'options': {}}, timeout=60)))
        poller.start()
        self.assertTrue(self.wait_for(lambda: dispatch.waiting >= 1 and dispatch.listening))
        reconnects = dispatch.reconnects
        with self.registry.cursor() as cr:
            cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                       [bus_module.listener_name()])
            self.assertEqual(len(cr.fetchall()), 1)
        self.assertTrue(self.wait_for(lambda: dispatch.reconnects > reconnects and dispatch.listening))
        self.send(self.channel, 'after reconnect')
        poller.join(15)
        self.assertFalse(poller.is_alive())
        self.assertEqual([n['message'] for n in answers[0]['result']], ['after reconnect'])

    def wait_for(self, condition, timeout=10):
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        return condition()

    def test_peek(self):
        self.send(self.channel, 'buffered')
        answer = self.post('/longpolling/poll', {
            'channels': [self.channel, 'other'], 'last': 0, 'options': {'peek': True}})
        self.assertEqual(answer['result']['channels'], [self.channel, 'other'])
        self.assertEqual([n['message'] for n in answer['result']['notifications']], ['buffered'])

    def test_private_channel_not_obtainable_by_naming(self):
        private = (self.db, 'res.partner', 424242)
        self.send(private, 'secret')
        for spelled in (json_dump(private), str(private), str(list(private))):
            answer = self.post('/longpolling/poll', {
                'channels': [spelled], 'last': 0, 'options': {'peek': True}})
            self.assertEqual(answer['result']['notifications'], [], spelled)
        answer = self.post('/longpolling/poll', {'channels': [list(private)], 'last': 0})
        self.assertEqual(answer['error']['data']['message'], STRING_ONLY)

    def test_bus_inactivity_updates_presence(self):
        self.authenticate('admin', 'admin')
        admin = self.env.ref('base.user_admin').id

        def drop():
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM bus_presence WHERE user_id = %s", [admin])

        drop()
        self.addCleanup(drop)
        answer = self.post('/longpolling/poll', {
            'channels': [self.channel], 'last': 0, 'options': {'peek': True, 'bus_inactivity': 1234}},
            session=self.opener)
        self.assertNotIn('error', answer)
        with self.registry.cursor() as cr:
            cr.execute("SELECT (now() AT TIME ZONE 'UTC') - last_presence FROM bus_presence"
                       " WHERE user_id = %s", [admin])
            [(idle,)] = cr.fetchall()
        self.assertLess(idle.total_seconds(), 10)
