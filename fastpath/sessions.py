"""The sessions the fast path acts for, read as Odoo's session store holds them.

Before every answer it gives without Odoo, the fast path checks that the session still
names the database, user and session token Odoo resolved it under: a logout, a new
login or a password change (a new token) hands the session back to Odoo at once. With
Odoo's file store the file is read again only when it changed (`imbus.stat_cache`);
another store (a Redis one, say) is asked each time.
"""

from typing import Any, Optional, Tuple

from ..imbus.stat_cache import StatCache

Basis = Tuple[Any, Any, Any]  # the session's database, user id and session token


class Sessions:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.filename = getattr(store, 'get_session_filename', None)
        self.files = StatCache()

    def basis(self, sid: str) -> Optional[Basis]:
        """What the store holds for `sid`, or None when it holds no such session."""
        if self.filename is None:
            return self.read(sid)
        if not self.store.is_valid_key(sid):  # also keeps the file name inside the store
            return None
        return self.files.get(self.filename(sid), lambda: self.read(sid))

    def read(self, sid: str) -> Optional[Basis]:
        session = self.store.get(sid)
        if session.sid != sid or getattr(session, 'new', False):
            return None
        return session.db, session.uid, session.session_token

    def keep(self, sids: Any) -> None:
        """Forget the files of every session but `sids`."""
        if self.filename is not None:
            self.files.keep(self.filename(sid) for sid in sids if self.store.is_valid_key(sid))
