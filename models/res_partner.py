from odoo import fields, models

from .res_users import STATUS_SQL, TIMERS


class ResPartner(models.Model):
    _inherit = 'res.partner'

    im_status = fields.Char('IM Status', compute='_compute_im_status')

    def _compute_im_status(self):
        """The freshest status among the partner's active users; 'im_partner' without one.

        'im_partner' tells the web client there is no user to watch for this partner.
        """
        statuses = {}
        ids = tuple(id_ for id_ in self.ids if isinstance(id_, int))
        if ids:
            self.env['bus.presence'].flush()
            self.env['res.users'].flush(['partner_id', 'active'])
            status = STATUS_SQL.format(poll='max(p.last_poll)', presence='max(p.last_presence)')
            self.env.cr.execute(
                f"""SELECT u.partner_id, {status}
                      FROM res_users u
                      LEFT JOIN bus_presence p ON p.user_id = u.id
                     WHERE u.partner_id IN %(ids)s AND u.active
                     GROUP BY u.partner_id""",
                dict(TIMERS, ids=ids))
            statuses = dict(self.env.cr.fetchall())
        for partner in self:
            partner.im_status = statuses.get(partner.id, 'im_partner')
