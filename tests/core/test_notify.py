"""NOTIFY payloads stay under PostgreSQL's 8000-byte limit and name every channel."""

import json

from imbus.channels import json_dump
from imbus.notify import EVERYONE, LIMIT, payloads


def test_small_batches_fit_one_payload_without_duplicates():
    assert payloads(["a", ("db", "res.partner", 3), "a", ["db", "res.partner", 3]]) == ['["a",["db","res.partner",3]]']


def test_many_channels_are_split_under_the_limit():
    channels = [["db", "mail.channel", n, "x" * 50] for n in range(1000)]
    result = payloads(channels)
    assert len(result) > 1
    assert all(len(payload.encode()) <= LIMIT for payload in result)
    decoded = [json_dump(channel) for payload in result for channel in json.loads(payload)]
    assert decoded == [json_dump(channel) for channel in channels]


def test_a_channel_too_big_for_any_payload_wakes_everyone():
    assert payloads(["é" * 5000, "small"]) == [EVERYONE, '["small"]']
