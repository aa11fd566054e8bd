"""The recent rows of one database, kept in memory and read by every waiting poller.

One refresh query per wake-up serves all the pollers of a database, and their
immediate re-polls read memory instead of running a query each.

Invariant: memory holds every visible row with `floor` < id <= `high`. It rests on the
commit-order trigger (`ordering`): a row becomes visible only after every row with a
lower id that will ever be visible, so reading `id > high` never skips a row, and a row
once read keeps its id. Every process's feed is thus a prefix of the same sequence, and
a client may resume with its `last` on any of them. Without the trigger (someone dropped
it) a row that commits after a higher id is missed, as in stock Odoo: the feed says so
in a warning when it loads.

Every read is bounded: a refresh reads CHUNK rows per query until it has caught up (the
GC keeps the table to 100 s of rows), a feed starts from the last SEED rows, a poll whose
`last` is older than memory reads at most COLD_LIMIT rows (it re-polls for the rest).

Ages (memory's retention, what `last` = 0 returns) count on the database's clock, which
stamps the rows: each refresh measures how far the host's clock is from it.
"""

import bisect
import datetime
import logging
import threading
from collections import deque
from typing import Any, Callable, ContextManager, Deque, Dict, Iterable, List, Optional, Set

from . import ordering, store
from .channels import TIMEOUT
from .store import Row

_logger = logging.getLogger(__name__)

RETAIN = 2 * TIMEOUT  # seconds of rows kept in memory, like the table's GC
MAX_ROWS = 100_000
MAX_BYTES = 64 * 1024 * 1024  # of channel and message text: a few huge messages must not fill the RAM
CHUNK = 1000  # rows per refresh query
SEED = 10_000  # rows a feed starts with, at most
COLD_READS = 4  # polls reading the table at once, for a `last` older than memory
COLD_LIMIT = 1000  # rows such a poll reads at most


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Channel:
    """One channel's rows in id order."""

    __slots__ = ("ids", "rows")

    def __init__(self) -> None:
        self.ids: List[int] = []
        self.rows: List[Row] = []

    def after(self, last: int) -> List[Row]:
        return self.rows[bisect.bisect_right(self.ids, last):]


class Feed:
    def __init__(self, dbname: str, cursor: Callable[[], ContextManager[Any]],
                 clock: Callable[[], datetime.datetime] = utcnow) -> None:
        self.dbname = dbname
        self.cursor = cursor  # a cursor on the feed's database
        self.clock = clock  # the host's clock, naive UTC
        self.refreshing = threading.Lock()  # one refresh query at a time
        self.lock = threading.Lock()  # guards the memory below: refreshes write it while polls read it
        self.cold = threading.BoundedSemaphore(COLD_READS)
        # Set without a lock by whoever learns of new rows (a notification, a peek), cleared
        # by `refresh` under `refreshing` just before its query: a notification during the
        # query sets it again, so the next refresh runs. Assigning a bool is atomic.
        self.stale = True
        self.loaded = False
        self.floor = 0
        self.high = 0
        self.log: Deque[Row] = deque()
        self.size = 0  # characters of channel and message text in `log`
        self.channels: Dict[str, Channel] = {}
        self.complete_since = datetime.datetime.max  # memory has every row created since then
        self.offset = datetime.timedelta(0)  # the database's clock minus the host's

    def refresh(self) -> Set[str]:
        """Bring memory up to date; returns the channel keys of the rows it took in."""
        with self.refreshing:
            if not self.stale:
                return set()  # another poller refreshed it while we queued
            self.stale = False
            try:
                with self.cursor() as cr:
                    return self._catch_up(cr) if self.loaded else self._load(cr)
            except Exception:
                self.stale = True
                raise

    def _load(self, cr: Any) -> Set[str]:
        if not ordering.installed(cr):
            _logger.warning("bus: database %s has no commit-order trigger on bus_bus: a notification committed"
                            " after a later one may be missed; update the module (odoo-bin -u bus) or start"
                            " python -m imbus serve on it once", self.dbname)
        rows, now = store.latest(cr, SEED)
        with self.lock:
            if len(rows) == SEED:  # older rows stay in the table
                self.floor = self.high = rows[0].id - 1
                self.complete_since = rows[0].created
            else:
                self.complete_since = datetime.datetime.min
            self._add(rows, now)
            self.loaded = True
        return {row.channel for row in rows}

    def _catch_up(self, cr: Any) -> Set[str]:
        keys: Set[str] = set()
        while True:
            rows, now = store.since(cr, self.high, CHUNK)
            with self.lock:
                self._add(rows, now)
            keys.update(row.channel for row in rows)
            if len(rows) < CHUNK:
                return keys

    def _add(self, rows: List[Row], now: datetime.datetime) -> None:
        """Append rows above every row in memory, then evict by age (on the database's
        clock `now`), count and size."""
        self.offset = now - self.clock()
        for row in rows:
            self.log.append(row)
            self.size += len(row.channel) + len(row.message)
            channel = self.channels.get(row.channel)
            if channel is None:
                channel = self.channels[row.channel] = Channel()
            channel.ids.append(row.id)
            channel.rows.append(row)
            self.high = row.id
        cutoff = now - datetime.timedelta(seconds=RETAIN)
        while self.log and (len(self.log) > MAX_ROWS or self.size > MAX_BYTES or self.log[0].created < cutoff):
            row = self.log.popleft()
            self.size -= len(row.channel) + len(row.message)
            channel = self.channels[row.channel]
            del channel.ids[0], channel.rows[0]
            if not channel.ids:
                del self.channels[row.channel]
            self.floor = row.id
            self.complete_since = max(self.complete_since, row.created)

    def read(self, keys: Iterable[str], last: int) -> Optional[List[Row]]:
        """Rows of the encoded channels after `last` (0: of the last TIMEOUT seconds),
        or None when memory cannot answer and the table must."""
        with self.lock:
            if not self.loaded:
                return None
            if last:
                if last < self.floor:
                    return None
                found = [row for key in keys if key in self.channels for row in self.channels[key].after(last)]
            else:
                cutoff = self.clock() + self.offset - datetime.timedelta(seconds=TIMEOUT)
                if self.complete_since > cutoff:
                    return None
                found = [row for key in keys if key in self.channels
                         for row in self.channels[key].rows if row.created > cutoff]
        found.sort(key=lambda row: row.id)
        return found
