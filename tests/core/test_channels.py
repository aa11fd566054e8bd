"""Channels are encoded byte for byte as Odoo 14 stores them."""

import datetime  # noqa: F401  (the golden values spell datetime.date(...))
import json

import pytest
from bus_fixtures import GOLDEN as GOLDEN_DIR

from imbus.channels import hashable, json_dump

GOLDEN = json.loads((GOLDEN_DIR / "channel_keys.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=[case["case"] for case in GOLDEN])
def test_encoding_matches_odoo(case):
    assert json_dump(eval(case["python_value"])) == case["json_dump"]


def test_tuple_and_list_are_the_same_channel():
    assert json_dump(("db", "res.partner", 3)) == json_dump(["db", "res.partner", 3])


def test_hashable_turns_nested_lists_and_dicts_into_keys():
    key = hashable(["db", "mail.channel", {"a": [1, 2]}])
    assert key == ("db", "mail.channel", (("a", (1, 2)),))
    assert {key: 1}[hashable(("db", "mail.channel", {"a": (1, 2)}))] == 1
