"""The fast path's cache of resolved polls: keys, serving, and what stops an entry."""

import json
import time

import pytest

from imbus.poll_cache import PollCache, last_id, poll_key

DB = "db1"
ORIGIN = ["odoo.example:8069", "127.0.0.1", None, None, False]
PARTNER = [DB, "res.partner", 3]
CHAT = [DB, "mail.channel", 7]


def params(channels=("general",), last=0, **options):
    return {"channels": list(channels), "last": last, "options": options}


def recorded(cache, key, uid=2, own=("general",), added=(PARTNER,)):
    entry = cache.record(key, DB, uid, [*own, *added], own)
    cache.complete(entry, [("Content-Type", "application/json")])
    return entry


def test_key_ignores_last_and_inactivity_but_not_the_rest():
    key = poll_key(params(last=5, bus_inactivity=10), "sid", ORIGIN)
    assert key == poll_key(params(last="9", bus_inactivity=99999), "sid", ORIGIN)
    assert key == poll_key(params(last=1), "sid", ORIGIN)
    assert key != poll_key(params(last=1), "other-sid", ORIGIN)
    assert key != poll_key(params(["general", "more"], last=1), "sid", ORIGIN)
    assert key != poll_key(params(last=1, peek=True), "sid", ORIGIN)
    assert key != poll_key(params(last=1), "sid", ["other.host", *ORIGIN[1:]])
    assert key != poll_key({**params(), "context": {"lang": "fr_FR"}}, "sid", ORIGIN)
    assert json.loads(key)[0] == "sid"


@pytest.mark.parametrize("bad", [
    params([["db1", "res.partner", 3]]),  # a tuple channel: the route refuses it
    params(last=True), params(last="abc"), params(last=-1), params(last=1.5),
    {"channels": "general", "last": 0}, {"channels": ["a"], "last": 0, "options": 5},
    ["not", "a", "dict"],
])
def test_polls_odoo_must_judge_have_no_key(bad):
    assert poll_key(bad, "sid", ORIGIN) is None


def test_no_session_no_key():
    assert poll_key(params(), None, ORIGIN) is None
    assert poll_key(params(), "", ORIGIN) is None


def test_last_id_as_the_route_accepts_it():
    assert [last_id(value) for value in (0, 12, "34")] == [0, 12, 34]
    assert [last_id(value) for value in (False, "-1", None, 2.0, "1e3")] == [None] * 5


def test_an_entry_serves_once_the_framework_answered():
    cache = PollCache()
    entry = cache.record("k", DB, 2, ["general", PARTNER], ["general"])
    assert cache.get("k") is None, "its headers are not known before the first answer"
    cache.complete(entry, [("Content-Type", "application/json")])
    assert cache.get("k") is entry
    assert entry.added == {json.dumps(PARTNER, separators=(",", ":"))}
    assert cache.get(None) is None
    assert cache.get("unknown") is None


def test_an_entry_expires_after_max_age_and_is_swept_one_age_later():
    cache = PollCache(max_age=0.05)
    recorded(cache, "k")
    assert cache.get("k") is not None
    time.sleep(0.06)
    assert cache.get("k") is None
    assert cache.sweep() == 0, "kept one more age, to hand its headers on"
    time.sleep(0.05)
    assert cache.sweep() == 1
    assert len(cache) == 0 and cache.listeners == {}


def test_a_key_resolved_again_serves_at_once_with_the_previous_answers_headers():
    """Re-resolving (after expiry, or a second client of the key) must not stop the key
    from serving until the framework answers the new poll."""
    cache = PollCache(max_age=0.05)
    old = recorded(cache, "k")
    time.sleep(0.06)
    assert cache.get("k") is None
    new = cache.record("k", DB, 2, ["general", CHAT], ["general"])
    assert cache.get("k") is new and new.headers == old.headers
    assert new.channels == ["general", CHAT]


def test_an_entry_waiting_for_headers_takes_those_of_an_earlier_poll_of_its_key():
    """A crowd sharing a key: polls resolved before any was answered replace each other;
    the first answer makes the current entry serve."""
    cache = PollCache()
    first = cache.record("k", DB, 2, ["general"], ["general"])
    current = cache.record("k", DB, 2, ["general"], ["general"])
    assert cache.get("k") is None
    cache.complete(first, [("Content-Type", "application/json")])
    assert cache.get("k") is current and current.headers == first.headers


def test_a_dropped_entry_hands_nothing_on():
    cache = PollCache()
    cache.drop(recorded(cache, "k"))
    cache.record("k", DB, 2, ["general"], ["general"])
    assert cache.get("k") is None


def test_a_notification_on_a_channel_of_its_user_alone_drops_the_entry():
    cache = PollCache()
    entry = recorded(cache, "k", uid=2)
    cache.answered(entry, [{"id": 1, "channel": "general", "message": "hi"}])
    assert cache.get("k") is entry, "a channel the client named changes nothing"
    cache.answered(entry, [{"id": 2, "channel": PARTNER, "message": {"info": "channel_joined"}}])
    assert cache.get("k") is None
    assert cache.listeners == {}


def test_another_session_of_the_same_user_does_not_make_the_channel_shared():
    cache = PollCache()
    entry = recorded(cache, "k1", uid=2)
    recorded(cache, "k2", uid=2)
    cache.answered(entry, [{"id": 2, "channel": PARTNER, "message": "joined"}])
    assert cache.get("k1") is None
    assert cache.get("k2") is not None


def test_a_channel_other_users_listen_to_is_not_private():
    cache = PollCache()
    entry = recorded(cache, "k1", uid=2, added=(CHAT, PARTNER))
    recorded(cache, "k2", uid=5, added=(CHAT,))
    cache.answered(entry, [{"id": 3, "channel": CHAT, "message": "a chat message"}])
    assert cache.get("k1") is entry
    cache.answered(entry, {"notifications": [], "channels": []})  # a peek's answer
    assert cache.get("k1") is entry


def test_the_same_channel_in_another_database_is_another_channel():
    cache = PollCache()
    entry = recorded(cache, "k1", uid=2)
    other = cache.record("k2", "db2", 5, ["general", PARTNER], ["general"])
    cache.complete(other, [])
    cache.answered(entry, [{"id": 2, "channel": PARTNER, "message": "joined"}])
    assert cache.get("k1") is None


def test_a_new_record_replaces_the_old_one_and_its_listeners():
    cache = PollCache()
    old = recorded(cache, "k", uid=2, added=(CHAT,))
    new = recorded(cache, "k", uid=2, added=(PARTNER,))
    assert cache.get("k") is new
    assert list(cache.listeners) == [DB + "\0" + json.dumps(PARTNER, separators=(",", ":"))]
    cache.answered(old, [{"id": 1, "channel": CHAT, "message": "x"}])  # the old one is gone already
    assert cache.get("k") is new


def test_drop_where_keeps_what_still_holds():
    cache = PollCache()
    for n, sequence in enumerate((4, 4, 5)):
        entry = cache.record(f"k{n}", DB, n, ["general"], ["general"], extra=sequence)
        cache.complete(entry, [])
    other = cache.record("elsewhere", "db2", 9, ["general"], ["general"], extra=4)
    cache.complete(other, [])
    assert cache.databases() == {DB, "db2"}
    assert cache.drop_where(DB, keep=lambda sequence: sequence == 5) == 2
    assert [key for key in ("k0", "k1", "k2", "elsewhere") if cache.get(key)] == ["k2", "elsewhere"]
    assert cache.drop_where(DB) == 1
    assert cache.databases() == {"db2"}


def test_a_session_is_known_by_its_last_live_answered_entry():
    cache = PollCache()
    first = cache.record("k1", DB, 2, ["general"], ["general"], session="sid")
    assert cache.of_session("sid") is None  # not answered yet
    cache.complete(first, [("Content-Type", "application/json")])
    assert cache.of_session("sid") is first
    second = cache.record("k2", DB, 2, ["other"], ["other"], session="sid")
    cache.complete(second, [])
    assert cache.of_session("sid") is second
    assert cache.of_session("other-sid") is None and cache.of_session(None) is None
    cache.drop(second)
    assert cache.of_session("sid") is None  # the older entry does not stand in for it
    assert "sid" not in cache.sessions


def test_an_expired_entry_does_not_vouch_for_its_session():
    cache = PollCache(max_age=0.01)
    entry = cache.record("k", DB, 2, ["general"], ["general"], session="sid")
    cache.complete(entry, [])
    time.sleep(0.02)  # past max_age
    assert cache.of_session("sid") is None
