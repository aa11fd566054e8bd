"""The presence reports of fast polls, batched per database and user."""

import time

from imbus.presence import PresenceBuffer


def test_latest_poll_and_latest_activity_per_user():
    buffer = PresenceBuffer()
    before = time.time()
    buffer.record("db1", 2, 60000)  # idle for a minute
    buffer.record("db1", 2, 1000)   # another tab: active a second ago
    buffer.record("db1", 2, 30000)  # the first tab again: still idle
    buffer.record("db1", 5, 0)
    buffer.record("db2", 2, 0)
    after = time.time()
    batches = buffer.take()
    assert sorted(batches) == ["db1", "db2"]
    assert sorted(batches["db1"]) == [2, 5]
    polled, active = batches["db1"][2]
    assert before <= polled <= after
    assert before - 1.0 <= active <= after - 1.0, "the most recent activity of any tab"
    assert buffer.take() == {}, "taken once"
