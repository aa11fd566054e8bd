"""The open-files limit, raised for processes that hold one socket per waiting poll
(the standalone server) or per poller (the bench)."""

import resource


def raise_file_limit() -> int:
    """Lift the soft limit of open files to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
