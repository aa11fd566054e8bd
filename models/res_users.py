from odoo import fields, models

from .bus_presence import AWAY_TIMER, DISCONNECTION_TIMER

# status from a user's presence: polls stopped -> offline, input stopped -> away
STATUS_SQL = """
    CASE WHEN {poll} IS NULL OR {poll} < now() AT TIME ZONE 'UTC' - make_interval(secs => %(offline)s)
              THEN 'offline'
         WHEN {presence} < now() AT TIME ZONE 'UTC' - make_interval(secs => %(away)s) THEN 'away'
         ELSE 'online'
    END
"""
TIMERS = {'offline': DISCONNECTION_TIMER, 'away': AWAY_TIMER}


class ResUsers(models.Model):
    _inherit = 'res.users'

    im_status = fields.Char('IM Status', compute='_compute_im_status')

    def _compute_im_status(self):
        """'online', 'away' or 'offline' (no presence row at all means offline)."""
        statuses = {}
        ids = tuple(id_ for id_ in self.ids if isinstance(id_, int))
        if ids:
            self.env['bus.presence'].flush()
            status = STATUS_SQL.format(poll='last_poll', presence='last_presence')
            self.env.cr.execute(
                f"SELECT user_id, {status} FROM bus_presence WHERE user_id IN %(ids)s",
                dict(TIMERS, ids=ids))
            statuses = dict(self.env.cr.fetchall())
        for user in self:
            user.im_status = statuses.get(user.id, 'offline')
