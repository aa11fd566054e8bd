"""The fast path's background greenlet: registry reloads and batched presence.

Every second it reads, for each database with fast-path entries, the registry sequence
Odoo bumps on a module install or upgrade (`base_registry_signaling`, the value each
request's `check_signaling` reads) with one cursor taken through the gate, and drops
the entries resolved under an older registry. Every `PRESENCE_PERIOD` seconds it writes
the presence the fast polls reported, one cursor per database, through
`bus.presence.update` as Odoo's own polls do: the activity time is what the browser
reported; the poll time is the write's, up to `PRESENCE_PERIOD` s late (Odoo's
thresholds are 55 s for offline and 30 min for away).

Logs (logger `odoo.addons.bus.fastpath.upkeep`): INFO when entries are dropped after a
registry change, WARNING with the traceback when a check or a write fails (retried at
the next round; reports of a failed write are lost, the next polls report again).
With the presence it sweeps the cache of entries no poll used for two poll periods, and
forgets the session files of the sessions gone with them.
"""

import logging
import threading
import time
from typing import Any

import odoo
from odoo import api

_logger = logging.getLogger(__name__)

REGISTRY_PERIOD = 1.0  # seconds between two reads of each database's registry sequence
PRESENCE_PERIOD = 5.0  # seconds between two presence writes


class Upkeep:
    def __init__(self, fastpath: Any) -> None:
        self.fastpath = fastpath

    def start(self) -> None:
        # a greenlet: the gevent process has `threading` patched
        threading.Thread(target=self.run, name='bus.fastpath.upkeep', daemon=True).start()

    def run(self) -> None:
        flushed = time.monotonic()
        while True:
            time.sleep(REGISTRY_PERIOD)
            for dbname in self.fastpath.cache.databases():
                try:
                    self.check_registry(dbname)
                except Exception:
                    _logger.warning("bus: reading the registry sequence of %s failed", dbname, exc_info=True)
            if time.monotonic() - flushed >= PRESENCE_PERIOD:
                flushed = time.monotonic()
                self.flush_presence()
                self.fastpath.cache.sweep()
                self.fastpath.sessions.keep(list(self.fastpath.cache.sessions))

    def check_registry(self, dbname: str) -> None:
        with self.fastpath.gate.enter(), odoo.sql_db.db_connect(dbname).cursor() as cr:
            cr.execute("SELECT last_value FROM base_registry_signaling")
            (sequence,) = cr.fetchone()
        dropped = self.fastpath.cache.drop_where(dbname, keep=lambda basis: basis.registry_sequence == sequence)
        if dropped:
            _logger.info("bus: registry of %s changed, %d fast-path entries dropped", dbname, dropped)

    def flush_presence(self) -> None:
        for dbname, users in self.fastpath.presence.take().items():
            try:
                with self.fastpath.gate.enter(), api.Environment.manage(), \
                        odoo.registry(dbname).cursor() as cr:
                    now = time.time()
                    for uid, (_polled, active) in users.items():
                        api.Environment(cr, uid, {})['bus.presence'].update(max(0.0, (now - active) * 1000))
            except Exception:
                _logger.warning("bus: writing the presence of %d user(s) in %s failed",
                                len(users), dbname, exc_info=True)
