"""The JS side inside a real Odoo: our QUnit tests of the wrappers and the tour of the
"page is out of date" notice, run by Odoo's own test browser."""

from odoo.tests import HttpCase, tagged


@tagged('post_install', '-at_install')
class TestBusJs(HttpCase):

    def test_qunit_bus(self):
        self.browser_js('/web/tests?module=bus', "", "", login='admin', timeout=300)

    def test_bundle_changed_notice(self):
        self.start_tour('/web', 'bundle_changed_notification', login='admin', timeout=180)
