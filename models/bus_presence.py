"""`bus.presence`: when each user last polled and was last active, for `im_status`.

Every poll of a logged-in browser reports its inactivity; several tabs of one user race
on the same row. Those races are harmless (any of them carries the news), so they are
rolled back without a word, and the row is written at most every `UPDATE_INTERVAL`
seconds unless the user's activity moved, which keeps write load and conflicts low.
"""

import datetime

from odoo import api, fields, models
from odoo.service.model import PG_CONCURRENCY_ERRORS_TO_RETRY
from odoo.tools import mute_logger
from psycopg2 import errorcodes

from .bus import TIMEOUT

DISCONNECTION_TIMER = TIMEOUT + 5  # no poll for this long (seconds): offline
AWAY_TIMER = 1800  # no activity for this long (seconds): away
UPDATE_INTERVAL = 3  # seconds between two writes of the same presence row

# errors of a lost race between two polls of one user (two tabs creating the row at once
# raise a unique violation)
SWALLOWED_PGCODES = (*PG_CONCURRENCY_ERRORS_TO_RETRY, errorcodes.UNIQUE_VIOLATION)


class BusPresence(models.Model):
    _name = 'bus.presence'
    _description = 'User Presence'
    _log_access = False

    _sql_constraints = [  # noqa: RUF012 (Odoo merges this list)
        ('bus_user_presence_unique', 'unique(user_id)', 'A user can only have one IM status.'),
    ]

    user_id = fields.Many2one('res.users', 'Users', required=True, index=True, ondelete='cascade')
    last_poll = fields.Datetime('Last Poll', default=lambda self: fields.Datetime.now())
    last_presence = fields.Datetime('Last Presence', default=lambda self: fields.Datetime.now())
    status = fields.Selection(
        [('online', 'Online'), ('away', 'Away'), ('offline', 'Offline')], 'IM Status', default='offline')

    @api.model
    def update(self, inactivity_period):
        """Record a poll of the current user, idle for `inactivity_period` milliseconds.

        Commits: the poll route releases its cursor right after this call.
        """
        cr = self.env.cr
        try:
            with mute_logger('odoo.sql_db'), cr.savepoint():
                self._update(inactivity_period)
        except Exception as error:
            if getattr(error, 'pgcode', None) not in SWALLOWED_PGCODES:
                raise
            self.invalidate_cache()
        cr.commit()

    @api.model
    def _update(self, inactivity_period):
        now = fields.Datetime.now()
        last_presence = now - datetime.timedelta(milliseconds=inactivity_period)
        interval = datetime.timedelta(seconds=UPDATE_INTERVAL)
        presence = self.search([('user_id', '=', self.env.uid)], limit=1)
        if not presence:
            self.create({'user_id': self.env.uid, 'last_poll': now, 'last_presence': last_presence})
            self.flush()
            return
        values = {}
        if not presence.last_poll or presence.last_poll <= now - interval:
            values['last_poll'] = now
        if not presence.last_presence or presence.last_presence <= last_presence - interval:
            values['last_presence'] = last_presence
        if values:
            presence.write(values)
            presence.flush()
