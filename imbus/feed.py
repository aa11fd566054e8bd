"""The recent rows of one database, kept in memory and read by every waiting poller.

One refresh query per wake-up serves all the pollers of a database, and their
immediate re-polls read memory instead of running a query each.

Ids are taken when a row is inserted but rows become visible when their transaction
commits, so a refresh can see id 12 while id 11 is still in flight. Such holes are
remembered as *pending*. A pending id that later shows up is *late*: pollers may
already have passed it with their `last`, so the dispatcher renumbers it above
everything delivered (see `store.renumber`). A pending id whose transaction is known
to have ended without it (txid bounds of a later snapshot) was rolled back and is
forgotten.
"""

import bisect
import datetime
import threading
from collections import deque
from typing import Deque, Dict, Iterable, List, Optional, Tuple

from .channels import TIMEOUT
from .store import Row, Snapshot

RETAIN = 2 * TIMEOUT  # seconds of rows kept in memory, like the table's GC
MAX_ROWS = 100_000
MAX_BYTES = 64 * 1024 * 1024  # of channel and message text: a few huge messages must not fill the RAM
SEED_IDS = 1000  # ids examined at start-up for rows still in flight
COLD_READS = 4  # polls reading the table at once, for a `last` older than memory
MAX_HOLE = 10_000  # a wider jump of ids (a sequence reset) is not a hole to watch


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
    """Memory holds every visible row with `floor` < id <= `high`, but the pending ones."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.lock = threading.Lock()  # one refresh at a time
        self.state = threading.Lock()  # guards the memory below against concurrent readers
        self.cold = threading.BoundedSemaphore(COLD_READS)
        self.dirty = True  # a notification came since the last refresh
        self.loaded = False
        self.floor = 0
        self.high = 0
        self.pending: Dict[int, Optional[int]] = {}  # id -> txid horizon, once known
        self.log: Deque[Row] = deque()
        self.size = 0  # characters of channel and message text in `log`
        self.channels: Dict[str, Channel] = {}
        self.complete_since = utcnow()  # memory has every row created since then

    def seed(self, rows: List[Row], since: datetime.datetime) -> None:
        """Start from `store.recent`: holes among the last SEED_IDS ids may be in flight;
        older rows are kept for `last` = 0 polls, every row created since `since` is here."""
        with self.state:
            high = rows[-1].id if rows else 0
            self.floor = self.high = max(high - SEED_IDS, 0)
            for row in rows:
                if row.id <= self.floor:
                    self.keep(row)
            self.add([row for row in rows if row.id > self.floor], high)
            self.complete_since = since
            self.evict()
            self.loaded = True

    def apply(self, snapshot: Snapshot) -> Tuple[List[Row], List[Row]]:
        """Take in a refresh; returns (new rows, late rows to renumber)."""
        with self.state:
            return self._apply(snapshot)

    def _apply(self, snapshot: Snapshot) -> Tuple[List[Row], List[Row]]:
        late = [row for row in snapshot.rows if row.id <= self.high]
        fresh = [row for row in snapshot.rows if row.id > self.high]
        seen = {row.id for row in late}
        for row_id, horizon in list(self.pending.items()):
            if row_id in seen:
                continue
            if horizon is None:
                self.pending[row_id] = snapshot.xmax
            elif snapshot.xmin >= horizon:
                del self.pending[row_id]  # its transaction ended without it
        self.add(fresh, fresh[-1].id if fresh else self.high)
        self.evict()
        return fresh, late

    def add(self, rows: List[Row], high: int) -> None:
        expected = self.high + 1
        for row in rows:
            self.watch(expected, row.id)
            expected = row.id + 1
            self.keep(row)
        self.watch(expected, high + 1)
        self.high = max(self.high, high)

    def keep(self, row: Row) -> None:
        """Append a row above every row in memory."""
        self.log.append(row)
        self.size += len(row.channel) + len(row.message)
        channel = self.channels.get(row.channel)
        if channel is None:
            channel = self.channels[row.channel] = Channel()
        channel.ids.append(row.id)
        channel.rows.append(row)

    def watch(self, start: int, stop: int) -> None:
        self.pending.update(dict.fromkeys(range(max(start, stop - MAX_HOLE), stop)))

    def pending_ids(self) -> List[int]:
        with self.state:
            return list(self.pending)

    def forget(self, ids: Iterable[int]) -> None:
        with self.state:
            for row_id in ids:
                self.pending.pop(row_id, None)

    def evict(self) -> None:
        """Drop the oldest rows beyond RETAIN seconds, MAX_ROWS or MAX_BYTES: polls with
        a `last` below them read the table instead."""
        cutoff = utcnow() - datetime.timedelta(seconds=RETAIN)
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
        or None when memory cannot answer and the database must."""
        with self.state:
            return self._read(keys, last)

    def _read(self, keys: Iterable[str], last: int) -> Optional[List[Row]]:
        if last:
            if last < self.floor:
                return None
            found = [row for key in keys if key in self.channels for row in self.channels[key].after(last)]
        else:
            cutoff = utcnow() - datetime.timedelta(seconds=TIMEOUT)
            if self.complete_since > cutoff:
                return None
            found = [row for key in keys if key in self.channels
                     for row in self.channels[key].rows if row.created > cutoff]
        found.sort(key=lambda row: row.id)
        return found
