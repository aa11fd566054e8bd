"""The process's one `LISTEN imbus` connection, kept alive; it forwards what it hears.

It runs in a thread (a greenlet when gevent has patched `threading`) and knows nothing
of feeds or waiters: it calls back
- `connected()` each time it listens anew (anything may have been committed meanwhile),
- `heard(keys, everyone)` with the channel keys of the notifications it read (`everyone`
  when one concerned every channel: an unreadable payload or the `"*"` of `notify`),
- `beat()` each time its own heartbeat comes back.

A lost connection is re-opened after 0.1 s, backing off to 1 s (stock Odoo sleeps 50 s).
Every HEARTBEAT_EVERY seconds it NOTIFYs a heartbeat through `announce` (the connection
pool, not the listening connection); when that does not come back within
HEARTBEAT_TIMEOUT the connection is deaf (a hung proxy, a dropped firewall state: no
error, queries on it would hang) and is replaced. Logs: "listening for notifications",
"listener lost (...), reconnecting in N s".
"""

import json
import logging
import select
import threading
import time
import uuid
from typing import Any, Callable, Optional, Set, Tuple

from . import notify
from .channels import json_dump

_logger = logging.getLogger(__name__)

TICK = 1.0  # seconds: the longest the thread sleeps before looking at `stopping` again
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats
HEARTBEAT_TIMEOUT = 5.0  # seconds for a heartbeat to come back before the connection counts as deaf
BACKOFF = (0.1, 1.0)  # first and longest pause between reconnection attempts


class Listener:
    def __init__(self, connect: Callable[[], Any], announce: Callable[[str], None], connected: Callable[[], None],
                 heard: Callable[[Set[str], bool], None], beat: Callable[[], None]) -> None:
        self.connect = connect
        self.announce = announce
        self.connected = connected
        self.heard = heard
        self.beat = beat
        self.heartbeat = json.dumps({"heartbeat": uuid.uuid4().hex})  # a JSON object: wakes nobody anywhere
        # Flags read by other threads without a lock: each is written by one thread only
        # (`stopping` by `stop`, the others by the listener thread) and read as a hint.
        self.stopping = False
        self.listening = False
        self.reconnects = 0
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="imbus.listener", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        if self.thread is not None:
            self.thread.join(TICK * 3)

    def _run(self) -> None:
        pause = BACKOFF[0]
        while not self.stopping:
            conn = None
            try:
                conn = self.connect()
                conn.autocommit = True
                with conn.cursor() as cr:
                    cr.execute("LISTEN " + notify.CHANNEL)
                self.listening, pause = True, BACKOFF[0]
                _logger.info("bus: listening for notifications")
                self.connected()
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

    def _listen(self, conn: Any) -> None:
        readable = select.poll()  # not select(): it fails on file numbers past 1024, and a
        readable.register(conn, select.POLLIN)  # process with many waiting polls has those
        due, sent = time.monotonic() + HEARTBEAT_EVERY, None
        while not self.stopping:
            now = time.monotonic()
            if sent is not None and now - sent > HEARTBEAT_TIMEOUT:
                raise ConnectionError(f"no heartbeat heard back within {HEARTBEAT_TIMEOUT:.0f} s")
            if sent is None and now >= due:
                self.announce(self.heartbeat)
                sent = now
            if not readable.poll(TICK * 1000):
                continue
            conn.poll()
            keys, everyone, beat = self._read(conn)
            if beat:
                due, sent = time.monotonic() + HEARTBEAT_EVERY, None
            if keys or everyone:
                self.heard(keys, everyone)
            if beat:
                self.beat()

    def _read(self, conn: Any) -> Tuple[Set[str], bool, bool]:
        """The channel keys heard, whether everyone is concerned, whether our heartbeat came back."""
        keys: Set[str] = set()
        everyone = beat = False
        for message in conn.notifies:
            if message.payload == self.heartbeat:
                beat = True
                continue
            channels = _decode(message.payload)
            if channels is None:
                everyone = True
            else:
                keys.update(json_dump(channel) for channel in channels)
        del conn.notifies[:]
        return keys, everyone, beat


def _decode(payload: str) -> Optional[list]:
    """The channels of a notification, or None when it concerns everyone."""
    try:
        channels = json.loads(payload)
    except ValueError:
        return None
    if isinstance(channels, dict):  # another process's heartbeat
        return []
    return channels if isinstance(channels, list) else None
