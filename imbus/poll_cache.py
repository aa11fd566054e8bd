"""What a web framework's slow poll learnt, so that the same session's re-polls can skip it.

Inside Odoo, a poll's final channel list comes from the `_poll` overrides of every
installed addon (mail adds the user's partner and chat channels, calendar its alarms...),
which costs a cursor and several queries per poll. This cache remembers that list per
*poll key* — the session, the host and client address it came from, the channels the
client named and its options (without the ever-changing `bus_inactivity`) — and lets a
re-poll with the same key go straight to the dispatcher.

An entry stops serving, so that the next poll goes through the framework again:
- after `max_age` seconds (TIMEOUT): session token, access and membership changes are
  then honoured within one poll period;
- when a poll of its own receives a notification on a *private* channel: one the
  framework added and that no other user's entry listens to (Odoo's addons announce a
  user's new or lost channels on such channels: mail's partner channel);
- when the adapter drops it (logout, another database, a registry reload).

An entry needs the framework's answer headers before it serves. When a poll of the same
key is resolved again (the entry expired, or several clients share the key), the new
entry takes the previous one's headers and serves at once, and an entry still waiting
for its headers takes those of any answered poll of its key: otherwise, while a crowd of
clients of one key re-polls, each re-poll would go through the framework and replace the
entry with another that cannot serve until its own poll is answered (a poll period
later). An expired entry is kept for that, serving nothing, until `sweep` removes it.

Framework-free and thread-safe (a `threading.Lock`, gevent's in a patched process).
"""

import json
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set

from .channels import TIMEOUT, json_dump

CHANGING_OPTIONS = ("bus_inactivity",)  # differ on every poll; not part of the key


def poll_key(params: Any, session_id: Optional[str], origin: Sequence[Any]) -> Optional[str]:
    """The key of a poll's JSON-RPC `params`, or None when the poll cannot be served
    from the cache (no session, or arguments the framework must judge, errors included).
    `origin` holds what else the framework's answer may depend on (host, client address)."""
    if not session_id or not isinstance(params, dict):
        return None
    channels, options = params.get("channels"), params.get("options")
    if not isinstance(channels, list) or any(not isinstance(channel, str) for channel in channels):
        return None
    if options is None:
        options = {}
    if not isinstance(options, dict) or last_id(params.get("last")) is None:
        return None
    rest = {name: value for name, value in params.items() if name not in ("last", "options")}
    stable = {name: value for name, value in options.items() if name not in CHANGING_OPTIONS}
    try:
        return json.dumps([session_id, list(origin), rest, stable], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def last_id(value: Any) -> Optional[int]:
    """`last` as the poll route accepts it (an integer or a string of digits), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        return None
    return int(value)


class Entry:
    """One session's poll as the framework resolved it."""

    __slots__ = ("added", "channels", "dbname", "expires", "extra", "headers", "key", "session", "uid")

    def __init__(self, key: str, dbname: str, uid: Any, channels: List[Any], own: Iterable[Any],
                 expires: float, extra: Any, session: Optional[str] = None) -> None:
        self.key = key
        self.session = session
        self.dbname = dbname
        self.uid = uid
        self.channels = channels
        own_keys = {json_dump(channel) for channel in own}
        self.added: FrozenSet[str] = frozenset(json_dump(channel) for channel in channels) - own_keys
        self.expires = expires
        self.extra = extra  # what the adapter checks before serving (session token, registry...)
        self.headers: Optional[List[Any]] = None  # the framework's answer headers, once it answered


class PollCache:
    def __init__(self, max_age: float = TIMEOUT) -> None:
        self.max_age = max_age
        self.entries: Dict[str, Entry] = {}
        self.listeners: Dict[str, Dict[Any, int]] = {}  # (dbname, added channel key) -> uid -> entries
        self.sessions: Dict[str, Entry] = {}  # session -> its entry recorded last
        self.lock = threading.Lock()

    def record(self, key: str, dbname: str, uid: Any, channels: List[Any], own: Iterable[Any],
               extra: Any = None, session: Optional[str] = None) -> Entry:
        """Remember a poll the framework is serving; it serves others once `complete`."""
        entry = Entry(key, dbname, uid, list(channels), own, time.monotonic() + self.max_age, extra, session)
        with self.lock:
            previous = self.entries.get(key)
            if previous is not None:
                entry.headers = previous.headers  # same session and origin: what the framework answers it
            self._remove(previous)
            self.entries[key] = entry
            if session:
                self.sessions[session] = entry
            for channel in entry.added:
                users = self.listeners.setdefault(dbname + "\0" + channel, {})
                users[uid] = users.get(uid, 0) + 1
        return entry

    def complete(self, entry: Entry, headers: List[Any]) -> None:
        """The framework answered `entry`'s poll with `headers`; the key's current entry,
        if another poll resolved it meanwhile and it has no headers yet, takes them too."""
        entry.headers = headers
        with self.lock:
            current = self.entries.get(entry.key)
            if current is not None and current.headers is None:
                current.headers = headers

    def get(self, key: Optional[str]) -> Optional[Entry]:
        """The live entry for `key`, if the framework has answered it and it is not too old."""
        if key is None:
            return None
        entry = self.entries.get(key)
        if entry is None or entry.headers is None or time.monotonic() >= entry.expires:
            return None
        return entry

    def of_session(self, session: Optional[str]) -> Optional[Entry]:
        """The live entry the framework resolved last for `session`: what it found the
        session to be (database, user) less than `max_age` ago, for the adapter to
        check before acting for that session without the framework."""
        entry = self.sessions.get(session) if session else None
        return entry if entry is not None and self.get(entry.key) is entry else None

    def answered(self, entry: Entry, notifications: Any) -> None:
        """Drop `entry` when its poll delivered a notification on a channel of its user alone."""
        if not isinstance(notifications, list) or not entry.added:
            return
        with self.lock:
            for notification in notifications:
                channel = json_dump(notification.get("channel"))
                if channel in entry.added:
                    users = self.listeners.get(entry.dbname + "\0" + channel, {})
                    if not any(uid != entry.uid for uid in users):
                        self._remove(entry)
                        return

    def drop(self, entry: Entry) -> None:
        with self.lock:
            self._remove(entry)

    def drop_where(self, dbname: str, keep: Any = None) -> int:
        """Drop the entries of `dbname`, except those whose `extra` satisfies `keep`."""
        return self._drop_all(lambda entry: entry.dbname == dbname and not (keep and keep(entry.extra)))

    def sweep(self) -> int:
        """Remove the entries expired more than `max_age` ago (sessions that stopped
        polling); returns how many."""
        horizon = time.monotonic() - self.max_age
        return self._drop_all(lambda entry: entry.expires <= horizon)

    def databases(self) -> Set[str]:
        with self.lock:
            return {entry.dbname for entry in self.entries.values()}

    def __len__(self) -> int:
        return len(self.entries)

    def _drop_all(self, stale: Callable[[Entry], bool]) -> int:
        with self.lock:
            doomed = [entry for entry in self.entries.values() if stale(entry)]
            for entry in doomed:
                self._remove(entry)
        return len(doomed)

    def _remove(self, entry: Optional[Entry]) -> None:
        if entry is None or self.entries.get(entry.key) is not entry:
            return
        del self.entries[entry.key]
        if entry.session and self.sessions.get(entry.session) is entry:
            del self.sessions[entry.session]
        for channel in entry.added:
            name = entry.dbname + "\0" + channel
            users = self.listeners[name]
            users[entry.uid] -= 1
            if not users[entry.uid]:
                del users[entry.uid]
            if not users:
                del self.listeners[name]
