"""What was read from a file, kept until the file changes.

The fast path checks a session's file before every re-poll it answers (a logout, a
password change or a new login must stop it at once). Reading and unpickling the file
each time costs more than the rest of such an answer; a `stat` tells whether it can have
changed: a file rewritten in place or replaced by a rename (as session stores save)
changes its inode, modification time or size. A removed file reads as None.
"""

import os
import threading
from typing import Any, Callable, Dict, Iterable, Optional, Tuple


class StatCache:
    def __init__(self) -> None:
        self.known: Dict[str, Tuple[Tuple[int, int, int], Any]] = {}
        self.lock = threading.Lock()

    def get(self, path: str, load: Callable[[], Any]) -> Optional[Any]:
        """`load()` (which reads `path`), or what it gave while the file was as it is
        now. The stamp is taken before the load: a change in between shows next time."""
        try:
            info = os.stat(path)
        except OSError:
            with self.lock:
                self.known.pop(path, None)
            return None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        known = self.known.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        value = load()
        with self.lock:
            self.known[path] = (stamp, value)
        return value

    def keep(self, paths: Iterable[str]) -> None:
        """Forget every file but `paths` (the ones still in use)."""
        wanted = set(paths)
        with self.lock:
            self.known = {path: known for path, known in self.known.items() if path in wanted}
