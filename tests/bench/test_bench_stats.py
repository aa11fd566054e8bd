"""The bench's accounting, on its own: percentiles, losses, duplicates, strays."""

import pytest

from imbus.bench.report import header, row
from imbus.bench.stats import Tally, percentile, summary


def test_percentiles_use_the_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summary_is_in_milliseconds_and_includes_the_max():
    assert summary([0.001, 0.002, 0.010]) == {"p50": 2.0, "p90": 10.0, "p99": 10.0, "max": 10.0}
    assert summary([]) == {"p50": None, "p90": None, "p99": None, "max": None}


def sent(tally, seq, recipients):
    message = tally.message(seq)
    tally.sent(seq, recipients, message["at"], 0.0)
    return message


def test_a_delivery_to_every_recipient_leaves_nothing_lost():
    tally = Tally()
    message = sent(tally, 1, [0, 1])
    tally.received(0, message, message["at"] + 0.001)
    tally.received(1, message, message["at"] + 0.003)
    report = tally.report()
    assert (report["expected"], report["delivered"], report["lost"], report["duplicated"]) == (2, 2, 0, 0)
    assert report["latency_ms"]["max"] == pytest.approx(3.0)


def test_a_missing_delivery_is_lost_and_a_repeated_one_duplicated():
    tally = Tally()
    message = sent(tally, 1, [0, 1, 2])
    tally.received(0, message, message["at"])
    tally.received(0, message, message["at"])
    report = tally.report()
    assert (report["delivered"], report["lost"], report["duplicated"]) == (1, 2, 1)


def test_deliveries_to_the_wrong_poller_or_of_foreign_messages_are_unexpected():
    tally = Tally()
    message = sent(tally, 1, [0])
    tally.received(0, message, message["at"])
    tally.received(5, message, message["at"])
    tally.received(0, {"hello": "world"}, 0.0)
    assert tally.report()["unexpected"] == 2


def test_errors_are_counted_by_kind():
    tally = Tally()
    tally.error("http: poll")
    tally.error("http: send")
    tally.error("rpc: send")
    report = tally.report()
    assert (report["http_errors"], report["rpc_errors"]) == (2, 1)


def test_a_row_lines_up_with_the_header_and_says_when_sql_is_unavailable():
    tally = Tally()
    message = sent(tally, 1, [0])
    tally.received(0, message, message["at"] + 0.002)
    result = {"scenario": "pingpong", "pollers": 1, **tally.report(), "sql": {"n/a": "no --dsn given"}}
    line = row(result)
    assert line.split()[:4] == ["pingpong", "1", "1", "1"]
    assert "sql n/a: no --dsn given" in line
    assert header().split()[:4] == ["scenario", "pollers", "sent", "delivered"]
