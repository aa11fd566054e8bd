"""The dispatcher: one LISTEN connection per process wakes the pollers it concerns.

How it beats the stock `ImDispatch` of Odoo 14:
- a poll registers its waiter *before* reading, so a notification committed in between
  wakes it at once (stock could sleep the full 50 s on it);
- a notification triggers one refresh query per database, into an in-memory feed that
  every woken poller (and its immediate re-poll) reads (stock: one query per poller);
- a lost listener connection is re-opened within about a second, with backoff, and
  every waiter re-reads afterwards (stock sleeps 50 s and may hang); one that goes deaf
  without an error is found by a heartbeat NOTIFY that does not come back (~15 s);
- rows committed out of id order are never skipped (see `feed`).

It runs in a thread, which is a greenlet when gevent has patched `threading`.
"""

import abc
import json
import logging
import select
import threading
import time
from typing import Any, Callable, ContextManager, Dict, FrozenSet, Iterable, List, Optional, Set

from . import notify, store
from .channels import TIMEOUT, json_dump
from .feed import SEED_IDS, Feed, Row

_logger = logging.getLogger(__name__)

TICK = 1.0  # seconds between checks of pending ids and of the listener's health
PING_AFTER = 10.0  # seconds of silence before the listener is sent a heartbeat
PING_TIMEOUT = 5.0  # seconds for that heartbeat to come back before the listener counts as deaf
HEARTBEAT = '{"heartbeat":1}'  # a JSON object: a notification that wakes nobody
BACKOFF = (0.1, 1.0)  # first and longest pause between reconnection attempts
NOTIFY_DB = "postgres"


class Database(abc.ABC):
    """Where the dispatcher gets its connections (standalone pools or Odoo's)."""

    @abc.abstractmethod
    def cursor(self, dbname: str) -> ContextManager[Any]:
        """A cursor that commits on a clean exit and rolls back on an error."""

    @abc.abstractmethod
    def listen_connection(self) -> Any:
        """A new psycopg2 connection to LISTEN on."""


class Waiter:
    __slots__ = ("cancelled", "dbname", "event", "keys")

    def __init__(self, dbname: str, keys: FrozenSet[str]) -> None:
        self.dbname = dbname
        self.keys = keys
        self.event = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        """End the wait now, empty-handed: nobody is left to answer (the client hung up)."""
        self.cancelled = True
        self.event.set()


class Dispatcher:
    def __init__(self, database: Database, timeout: float = TIMEOUT) -> None:
        self.database = database
        self.timeout = timeout
        self.feeds: Dict[str, Feed] = {}
        self.waiters: Dict[str, Dict[str, Set[Waiter]]] = {}  # dbname -> channel key -> waiters
        self.waiting = 0
        self.lock = threading.Lock()
        self.started = False
        self.stopping = False
        self.listening = False
        self.reconnects = 0
        self.thread: Optional[threading.Thread] = None

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
        self._register(waiter)
        try:
            if watch is not None:
                watch(waiter)
            return self._wait(waiter, last, self.timeout if timeout is None else timeout)
        finally:
            self._unregister(waiter)

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
            feed.dirty = True
        if feed.dirty:
            self.refresh(feed)
        rows = feed.read(keys, last)
        if rows is None:  # an old `last`: a few such reads at a time, so they cannot drain the pool
            with feed.cold, self.database.cursor(dbname) as cr:
                rows = store.select(cr, sorted(keys), last, upto=feed.high, exclude=feed.pending_ids())
        return [row.as_dict() for row in rows]

    def feed(self, dbname: str) -> Feed:
        with self.lock:
            if dbname not in self.feeds:
                self.feeds[dbname] = Feed(dbname)
            return self.feeds[dbname]

    def refresh(self, feed: Feed) -> None:
        """Bring `feed` up to date with one query and wake the waiters of its new rows."""
        with feed.lock:
            if not feed.dirty:
                return  # another poller refreshed it while we queued
            feed.dirty = False
            try:
                with self.database.cursor(feed.dbname) as cr:
                    if not feed.loaded:  # pollers that read the empty feed meanwhile are woken below
                        rows, since = store.recent(cr, SEED_IDS)
                        feed.seed(rows, since)
                        fresh, late = rows, []
                    else:
                        fresh, late = feed.apply(store.read_since(cr, feed.high, feed.pending_ids()))
            except Exception:
                feed.dirty = True
                raise
        self._wake(feed.dbname, {row.channel for row in fresh})
        if late:
            self._renumber(feed, late)

    def _renumber(self, feed: Feed, late: List[Row]) -> None:
        """Re-issue rows that committed after pollers passed their ids."""
        try:
            with self.database.cursor(feed.dbname) as cr:
                moved = store.renumber(cr, [row.id for row in late])
            feed.forget(row.id for row in late)
            with self.database.cursor(NOTIFY_DB) as cr:
                notify.announce(cr, notify.pack(row.channel for row in moved))
        except Exception:
            _logger.exception("bus: could not re-issue late notifications %s", [row.id for row in late])
        else:
            _logger.info("bus: re-issued late notifications %s", [row.id for row in late])

    # -- waiters ----------------------------------------------------------------

    def _register(self, waiter: Waiter) -> None:
        with self.lock:
            index = self.waiters.setdefault(waiter.dbname, {})
            for key in waiter.keys:
                index.setdefault(key, set()).add(waiter)
            self.waiting += 1

    def _unregister(self, waiter: Waiter) -> None:
        with self.lock:
            index = self.waiters[waiter.dbname]
            for key in waiter.keys:
                index[key].discard(waiter)
                if not index[key]:
                    del index[key]
            if not index:
                del self.waiters[waiter.dbname]
            self.waiting -= 1

    def _wake(self, dbname: str, keys: Optional[Iterable[str]] = None) -> None:
        """Wake the waiters of `keys` in `dbname` (all of them when `keys` is None)."""
        with self.lock:
            index = self.waiters.get(dbname, {})
            groups = index.values() if keys is None else [index[key] for key in keys if key in index]
            woken = set().union(*groups)
        for waiter in woken:
            waiter.event.set()

    def _wake_everyone(self) -> None:
        for dbname in list(self.waiters):
            self._wake(dbname)

    def _watched(self, dbname: str, keys: Set[str]) -> bool:
        with self.lock:
            index = self.waiters.get(dbname, {})
            return any(key in index for key in keys)

    # -- listening --------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            if self.started:
                return
            self.started, self.stopping = True, False
            self.thread = threading.Thread(target=self._run, name="imbus.dispatcher", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """Answer every waiting poll and close the listener."""
        self.stopping = True
        self._wake_everyone()
        if self.thread is not None:
            self.thread.join(TICK * 3)
        self.started = False

    def _run(self) -> None:
        pause = BACKOFF[0]
        while not self.stopping:
            conn = None
            try:
                conn = self.database.listen_connection()
                conn.autocommit = True
                with conn.cursor() as cr:
                    cr.execute("LISTEN " + notify.CHANNEL)
                self.listening, pause = True, BACKOFF[0]
                _logger.info("bus: listening for notifications")
                self._resync()
                self._listen(conn)
            except Exception as error:
                _logger.warning("bus: listener lost (%s), reconnecting in %.1f s", error, pause)
            finally:
                self.listening = False
                if conn is not None and not conn.closed:
                    conn.close()
            if not self.stopping:
                time.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
                self.reconnects += 1

    def _resync(self) -> None:
        """After (re)connecting, anything may have been committed: every waiter re-reads."""
        for feed in list(self.feeds.values()):
            feed.dirty = True
        self._wake_everyone()

    def _listen(self, conn: Any) -> None:
        quiet_since, pinged = time.monotonic(), None
        readable = select.poll()  # not select(): it fails on file numbers past 1024, and a
        readable.register(conn, select.POLLIN)  # process with many waiting polls has those
        while not self.stopping:
            if not readable.poll(TICK * 1000):
                self._tick()
                pinged = self._check_hearing(quiet_since, pinged)
                continue
            conn.poll()
            keys, everyone = set(), False
            for message in conn.notifies:
                channels = _decode(message.payload)
                if channels is None:
                    everyone = True
                else:
                    keys.update(json_dump(channel) for channel in channels)
            del conn.notifies[:]
            quiet_since, pinged = time.monotonic(), None  # anything heard, a heartbeat too, proves the line
            if keys or everyone:
                self._dispatch(keys, everyone)

    def _check_hearing(self, quiet_since: float, pinged: Optional[float]) -> Optional[float]:
        """After PING_AFTER s of silence, NOTIFY a heartbeat through the pool; raise when it
        has not come back PING_TIMEOUT s later, so `_run` listens anew. Nothing here waits
        on the listener: a frozen proxy or a dropped firewall state gives no error, and a
        query on that connection would hang (stock Odoo hangs until restarted)."""
        now = time.monotonic()
        if pinged is not None:
            if now - pinged > PING_TIMEOUT:
                raise ConnectionError(f"no heartbeat heard back within {PING_TIMEOUT:.0f} s")
            return pinged
        if now - quiet_since > PING_AFTER:
            with self.database.cursor(NOTIFY_DB) as cr:
                notify.announce(cr, [HEARTBEAT])
            return now
        return None

    def _dispatch(self, keys: Set[str], everyone: bool) -> None:
        for feed in list(self.feeds.values()):
            feed.dirty = True
            if everyone or feed.pending or self._watched(feed.dbname, keys):
                self._try_refresh(feed)

    def _tick(self) -> None:
        """Watch pending ids even when no notification comes (a rollback sends none)."""
        for feed in list(self.feeds.values()):
            if feed.pending:
                feed.dirty = True
                self._try_refresh(feed)

    def _try_refresh(self, feed: Feed) -> None:
        try:
            self.refresh(feed)
        except Exception:
            _logger.warning("bus: refreshing %s failed", feed.dbname, exc_info=True)


def _decode(payload: str) -> Optional[list]:
    """The channels of a notification, or None when it concerns everyone."""
    try:
        channels = json.loads(payload)
    except ValueError:
        return None
    if isinstance(channels, dict):  # a heartbeat
        return []
    return channels if isinstance(channels, list) else None
