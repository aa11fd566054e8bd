"""Framework-free core of the `bus` addon: long-polling notifications over PostgreSQL.

Never imports `odoo`: the Odoo adapters (`models/`, `controllers/`) and the standalone
server (`python -m imbus serve`) both drive it. Import it relatively inside the package,
since Odoo loads it as `odoo.addons.bus.imbus`.
"""
