"""Base's asset bundles announce new versions on `(db, 'bundle_changed')`, which the web
client turns into a "refresh" notice. The Python half, over real HTTP."""

import json
import unittest

import odoo
from odoo.addons.bus.models.bus import json_dump
from odoo.osv import expression
from odoo.tests import HttpCase, tagged

TRACKED = ('web.assets_common', 'web.assets_backend')


# `odoo-bin --workers=N --test-enable` runs the tests in the prefork master, where no
# HTTP server answers: HTTP tests can only run in a threaded server.
needs_http = unittest.skipIf(odoo.multi_process and not odoo.evented,
                             "prefork server: no HTTP server in the test process")


@tagged('post_install', '-at_install', 'assets_bundle')
@needs_http
class TestBundleChanged(HttpCase):

    def test_regenerated_bundles_are_announced(self):
        domain = expression.OR([[('name', 'ilike', f'{bundle}%')] for bundle in TRACKED])
        self.env['ir.attachment'].search(domain).unlink()
        self.env.registry._clear_cache()
        channel = json_dump((self.env.cr.dbname, 'bundle_changed'))
        before = self.env['bus.bus'].sudo().search([('channel', '=', channel)])

        self.authenticate('admin', 'admin')
        self.assertEqual(self.url_open('/web').status_code, 200)

        rows = self.env['bus.bus'].sudo().search([('channel', '=', channel)]) - before
        messages = [json.loads(row.message) for row in rows]
        self.assertEqual({bundle for bundle, _version in messages}, set(TRACKED))
        self.assertTrue(all(isinstance(version, str) and version for _bundle, version in messages))
