"""The dispatcher: one LISTEN connection per process wakes the pollers it concerns.

It composes the `listener` (what PostgreSQL announces), the `waiters` (who waits on
what) and one `feed` per database (the recent rows, in memory). How it beats the stock
`ImDispatch` of Odoo 14:
- a poll registers its waiter *before* reading, so a notification committed in between
  wakes it at once (stock could sleep the full 50 s on it);
- a notification triggers one refresh query per database, into the feed that every
  woken poller (and its immediate re-poll) reads (stock: one query per poller);
- a lost listener is re-opened within about a second, and every waiter re-reads
  afterwards; a deaf one is found by its heartbeat, which does not come back (~15 s);
- each heartbeat that comes back (every 10 s) also refreshes the feeds that have
  waiters, so a row whose NOTIFY failed after its commit still arrives within ~10 s;
- ids become visible in commit order (`ordering`), so rows committed out of order are
  never skipped, by this process or any other sharing the database.
"""

import abc
import logging
import threading
import time
from typing import Any, Callable, ContextManager, Dict, Iterable, List, Optional, Set

from . import notify, store
from .channels import TIMEOUT, json_dump
from .feed import COLD_LIMIT, Feed
from .listener import Listener
from .waiters import Waiter, Waiters

_logger = logging.getLogger(__name__)

NOTIFY_DB = "postgres"


class Database(abc.ABC):
    """Where the dispatcher gets its connections (standalone pools or Odoo's)."""

    @abc.abstractmethod
    def cursor(self, dbname: str) -> ContextManager[Any]:
        """A cursor that commits on a clean exit and rolls back on an error."""

    @abc.abstractmethod
    def listen_connection(self) -> Any:
        """A new psycopg2 connection to LISTEN on."""

    def announce(self, payloads: List[str]) -> None:
        """NOTIFY `payloads` (`notify.payloads`) on the `postgres` database, committed."""
        with self.cursor(NOTIFY_DB) as cr:
            notify.announce(cr, payloads)


class Dispatcher:
    def __init__(self, database: Database, timeout: float = TIMEOUT) -> None:
        self.database = database
        self.timeout = timeout
        self.waiters = Waiters()
        self.feeds: Dict[str, Feed] = {}
        self.lock = threading.Lock()  # guards `feeds` and `started`
        self.started = False
        # Set by `stop` before it wakes every waiter, read by those polls once woken.
        self.stopping = False
        self.listener = Listener(database.listen_connection, self._announce, connected=self._resync,
                                 heard=self._heard, beat=self._sweep)

    @property
    def listening(self) -> bool:
        return self.listener.listening

    @property
    def reconnects(self) -> int:
        return self.listener.reconnects

    @property
    def waiting(self) -> int:
        return self.waiters.count

    # -- polling --------------------------------------------------------------

    def poll(self, dbname: str, channels: Iterable[Any], last: int, options: Optional[dict] = None,
             timeout: Optional[float] = None, watch: Optional[Callable[[Waiter], Any]] = None) -> Any:
        """Notifications of `channels` after `last`, waiting up to `timeout` for some;
        with `options['peek']`, what is there now and the channels, without waiting.
        `watch` is handed the waiter before the wait, to `cancel` it if the client leaves."""
        options = options or {}
        channels = list(channels)
        keys = frozenset(json_dump(channel) for channel in channels)
        if options.get("peek"):  # answers at once, so it cannot wait for a NOTIFY in flight
            return {"notifications": self.read(dbname, keys, last, fresh=True), "channels": channels}
        if not self.started:
            self.start()
        waiter = Waiter(dbname, keys)
        self.waiters.add(waiter)
        try:
            if watch is not None:
                watch(waiter)
            return self._wait(waiter, last, self.timeout if timeout is None else timeout)
        finally:
            self.waiters.remove(waiter)

    def _wait(self, waiter: Waiter, last: int, timeout: float) -> List[dict]:
        deadline = time.monotonic() + timeout
        notifications = self.read(waiter.dbname, waiter.keys, last)
        while not notifications and not self.stopping:
            if not waiter.event.wait(max(deadline - time.monotonic(), 0)) or waiter.cancelled:
                break
            waiter.event.clear()
            try:
                notifications = self.read(waiter.dbname, waiter.keys, last)
            except Exception:  # the database is away; the listener will wake us again
                _logger.warning("bus: re-reading after a wake-up failed", exc_info=True)
        return notifications

    def read(self, dbname: str, keys: Iterable[str], last: int, fresh: bool = False) -> List[dict]:
        """What a poll returns now: from memory, or from the table for an old `last`.
        Memory is refreshed first when notified of changes, when `fresh` is asked, and
        whenever no listener keeps it up to date."""
        feed = self.feed(dbname)
        if fresh or not self.listening:
            feed.stale = True
        if feed.stale:
            self.refresh(feed)
        rows = feed.read(keys, last)
        if rows is None:  # an old `last`: a few such reads at a time, so they cannot drain the pool
            with feed.cold, self.database.cursor(dbname) as cr:
                rows = store.select(cr, sorted(keys), last, COLD_LIMIT)
        return [row.as_dict() for row in rows]

    def feed(self, dbname: str) -> Feed:
        with self.lock:
            if dbname not in self.feeds:
                self.feeds[dbname] = Feed(dbname, lambda: self.database.cursor(dbname))
            return self.feeds[dbname]

    def refresh(self, feed: Feed) -> None:
        """Bring `feed` up to date and wake the waiters of its new rows."""
        keys = feed.refresh()
        if keys:
            self.waiters.wake(feed.dbname, keys)

    # -- the listener's calls ---------------------------------------------------

    def start(self) -> None:
        with self.lock:
            if self.started:
                return
            self.started, self.stopping = True, False
            self.listener.start()

    def stop(self) -> None:
        """Answer every waiting poll and close the listener."""
        self.stopping = True
        self.waiters.wake_all()
        self.listener.stop()
        with self.lock:
            self.started = False

    def _announce(self, payload: str) -> None:
        self.database.announce([payload])

    def _resync(self) -> None:
        """After (re)connecting, anything may have been committed: every waiter re-reads."""
        for feed in self._feeds():
            feed.stale = True
        self.waiters.wake_all()

    def _heard(self, keys: Set[str], everyone: bool) -> None:
        for feed in self._feeds():
            feed.stale = True
            if self.waiters.watched(feed.dbname, None if everyone else keys):
                self._try_refresh(feed)

    def _sweep(self) -> None:
        """Our heartbeat came back: catch up on rows committed without a NOTIFY heard."""
        for feed in self._feeds():
            feed.stale = True
            if self.waiters.watched(feed.dbname):
                self._try_refresh(feed)

    def _feeds(self) -> List[Feed]:
        with self.lock:
            return list(self.feeds.values())

    def _try_refresh(self, feed: Feed) -> None:
        try:
            self.refresh(feed)
        except Exception:
            _logger.warning("bus: refreshing %s failed", feed.dbname, exc_info=True)
