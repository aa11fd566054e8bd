"""`/longpolling/send` answered in the gevent process without Odoo's dispatch.

A send from a session the fast path knows (Odoo resolved one of its polls less than
50 s ago, and the session store still holds it unchanged) stores the row as that user
with one cursor of the bus's own, commits, NOTIFYs, and answers as Odoo would: what
`bus.bus.sendone` would have written (channel and message as JSON, `create_uid` and
`write_uid` the user, both dates the commit's, in UTC), in a few milliseconds instead
of Odoo's request path (session load, registry check, environment, ORM, ~20 ms).

Odoo keeps the send when anything could make it behave otherwise: an addon that
overrides `sendone`, `sendmany`, `create` or `_create` of `bus.bus` (or of every model,
as `base_automation` does), `bus_send_access` set to `off`, a session without a user,
no string `channel` or no `message` (Odoo answers those with its errors).
"""

from typing import Any, Callable, Dict, Optional, Tuple

from odoo.models import BaseModel
from odoo.modules.registry import Registry

from ..imbus import store
from ..models.bus import ImBus, notify_channels, send_access
from .replies import JSON_HEADERS, Call, reply

SENDING = ('sendone', 'sendmany', 'create', '_create')
# who may define those without changing a send: Odoo's ORM, this addon, and base's
# `create` that maps external ids during an import (idle without its import context)
PLAIN = (BaseModel.__module__, ImBus.__module__, 'odoo.addons.base.models.ir_fields')


def plain_bus(registry: Any) -> bool:
    """Whether `bus.bus` in `registry` (the class Odoo composed from every addon's)
    sends exactly as this addon's model does: no other addon overrides how it sends."""
    return all(klass.__module__ in PLAIN for klass in registry['bus.bus'].__mro__
               if any(name in vars(klass) for name in SENDING))


class FastSend:
    def __init__(self, database: Any) -> None:
        self.database = database  # the dispatcher's: its cursors are bounded apart from Odoo's requests
        self.plain: Dict[Tuple[str, Any], bool] = {}  # (dbname, registry sequence) -> plain_bus

    def accepts(self, call: Call, dbname: str, uid: Any) -> bool:
        params = call.params  # Odoo drops params the route does not name
        if 'channel' not in params or 'message' not in params or not isinstance(params['channel'], str) or not uid:
            return False
        if send_access() == 'off':
            return False
        registry = Registry.registries.get(dbname)
        if registry is None:
            return False
        key = (dbname, registry.registry_sequence)
        plain = self.plain.get(key)
        if plain is None:
            plain = self.plain[key] = plain_bus(registry)
        return plain

    def answer(self, call: Call, dbname: str, uid: int, start_response: Callable) -> Any:
        channel, message = call.params['channel'], call.params['message']

        def send() -> Optional[Any]:
            with self.database.cursor(dbname) as cr:  # commits on leaving
                store.insert(cr, [(channel, message)], uid)
            notify_channels([channel])
            return None

        return reply(call, send, start_response, JSON_HEADERS)
