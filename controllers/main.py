"""Long-polling routes. `mail`, `calendar` and `hr_presence` subclass `BusController`
and override `_poll` (or `poll`) to add the private channels of the logged-in user.

Clients may only name *string* channels: the tuple channels such as
`(db, 'res.partner', id)` are private and only server code (the `_poll` overrides)
adds them, so naming someone else's partner channel from a browser yields nothing.
"""

from odoo import _, exceptions
from odoo.http import Controller, SessionExpiredException, request, route

from ..fastpath.middleware import odoo_poll
from ..models.bus import dispatch, send_access
from . import misrouted

misrouted.install_filter()


def check_channels(channels) -> None:
    if any(not isinstance(channel, str) for channel in channels):
        raise Exception("bus.Bus only string channels are allowed.")


class BusController(Controller):

    @route('/longpolling/send', type="json", auth="public")
    def send(self, channel, message):
        """Post `message` on the string `channel`.

        Who may post is the `bus_send_access` config key: 'user' (default, logged-in
        users only), 'public' (anyone, as stock Odoo) or 'off' (nobody).
        """
        check_channels([channel])
        access = send_access()
        if access == 'off':
            raise exceptions.AccessDenied()
        if access == 'user' and not request.session.uid:
            raise SessionExpiredException("Session expired")
        return request.env['bus.bus'].sendone(channel, message)

    def _poll(self, dbname, channels, last, options):
        """Wait for notifications; overrides add channels before calling super()."""
        if request.session.uid and 'bus_inactivity' in options:
            inactivity = options.get('bus_inactivity')
            if isinstance(inactivity, (int, float)) and not isinstance(inactivity, bool):
                request.env['bus.presence'].update(inactivity)
        # give the request's connection back to the pool for the whole wait
        if request._cr is not None:
            request._cr.close()
        request._cr = None
        request._env = None
        if 'bundle_changed' in channels:
            # the web client names the string; assets are announced on the db's tuple channel
            channels = [*channels, (dbname, 'bundle_changed')]
        return odoo_poll(dispatch, request, dbname, channels, last, options)

    @route('/longpolling/poll', type="json", auth="public", cors="*")
    def poll(self, channels, last, options=None):
        if options is None:
            options = {}
        if not dispatch:
            misrouted.refuse()
        check_channels(channels)
        if not isinstance(options, dict):
            raise Exception("bus.Bus options must be an object.")
        if isinstance(last, bool) or not isinstance(last, (int, str)) or not str(last).isdigit():
            raise Exception("bus.Bus last must be a notification id.")
        if request.registry.in_test_mode():
            raise exceptions.UserError(_("bus.Bus not available in test mode"))
        return self._poll(request.db, channels, int(last), options)

    @route('/longpolling/im_status', type="json", auth="user")
    def im_status(self, partner_ids):
        partners = request.env['res.partner'].with_context(active_test=False).search(
            [('id', 'in', partner_ids)])
        return partners.read(['im_status'])
