{  # noqa: B018 (an Odoo manifest is a bare dict literal)
    'name': 'IM Bus',
    'version': '1.0',
    'category': 'Hidden',
    'summary': 'Real-time notifications to browsers over long-polling',
    'description': """
Delivers server-side notifications to web clients in real time: rows are written to
`bus.bus`, PostgreSQL NOTIFY wakes the waiting long-poll requests, and user presence
(online / away / offline) is tracked from those polls.
""",
    'depends': ['base', 'web'],
    'data': [
        'security/ir.model.access.csv',
        'views/bus.xml',
    ],
    'installable': True,
    'auto_install': True,
    'license': 'LGPL-3',
}
