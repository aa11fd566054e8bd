"""Random payloads on the poll and send routes (Hypothesis): every one is answered
(a result, a JSON-RPC error or a 4xx) unless it is a valid poll, which may wait and
is then abandoned; afterwards the server still serves and holds no waiter."""

import json
import math

import pytest
from bus_fixtures import own_server
from faults_support import RawRequest, health
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import wait_for

WAIT = 0.3  # seconds a valid poll is given to answer before it counts as waiting

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(), st.text(st.characters(codec=None, exclude_categories=()), max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=12)
channel_names = st.text(max_size=12)
names = st.one_of(channel_names, channel_names, values)  # mostly plausible, some anything
polls = st.fixed_dictionaries({
    "channels": st.one_of(st.lists(names, max_size=5), values),
    "last": st.one_of(st.integers(min_value=0, max_value=50), st.integers(min_value=-5, max_value=2**64), values),
    "options": st.one_of(st.just({"peek": True}), st.just({}), st.dictionaries(st.text(max_size=6), values), values),
})
sends = st.fixed_dictionaries({"channel": names, "message": values})
poll_params = st.one_of(polls, polls, st.dictionaries(st.sampled_from(["channels", "last", "options", "x"]), values))
send_params = st.one_of(sends, sends, st.dictionaries(st.sampled_from(["channel", "message", "x"]), values))


def envelopes(params):
    """Mostly well-formed JSON-RPC envelopes, sometimes any JSON, sometimes any bytes."""
    return st.one_of(
        params.map(lambda p: json.dumps({"jsonrpc": "2.0", "method": "call", "params": p, "id": 1}).encode()),
        values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
    )


@pytest.fixture(scope="module")
def srv(pg):
    yield from own_server(pg, "--max-body", "20000")


def could_wait(body: bytes) -> bool:
    """Whether `body` is a valid, non-peek poll: the only request allowed to go unanswered."""
    try:
        params = json.loads(body)["params"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return False
    if not isinstance(params, dict) or not set(params) <= {"channels", "last", "options"}:
        return False
    channels, last, options = params.get("channels"), params.get("last", 0), params.get("options")
    return (isinstance(channels, list) and all(isinstance(channel, str) for channel in channels)
            and isinstance(last, int) and not isinstance(last, bool) and 0 <= last < 2**63
            and (options is None or (isinstance(options, dict) and not options.get("peek"))))


def well_formed(status, envelope, path):
    if status in (400, 413):
        return isinstance(envelope, dict) and "error" in envelope
    if status != 200 or not isinstance(envelope, dict) or envelope.get("jsonrpc") != "2.0":
        return False
    if "error" in envelope:
        data = envelope["error"]["data"]
        return envelope["error"]["code"] == 200 and data["arguments"] == [data["message"]]
    return path.endswith("send") or "result" in envelope


def exchange(srv, path, body):
    waits = path.endswith("poll") and could_wait(body)
    request = RawRequest(srv.url, path, body)
    try:
        status, envelope = request.response(timeout=WAIT if waits else 10)
    except TimeoutError:
        assert waits, f"no answer to {body[:200]!r}"
        request.reset()  # a valid poll waiting for news: abandon it, and it must let go
        wait_for(lambda: health(srv.url)["waiters"] == 0, within=10, message=f"{body!r} left a waiter")
        return
    request.hang_up()
    assert well_formed(status, envelope, path), (body[:200], status, envelope)
    assert not _has_nan(envelope), "a non-JSON constant reached a client"


def _has_nan(value):
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, dict):
        return any(map(_has_nan, value.values()))
    return isinstance(value, list) and any(map(_has_nan, value))


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=envelopes(poll_params))
def test_random_polls_are_all_answered_or_legitimately_waiting(srv, body):
    exchange(srv, "/longpolling/poll", body)


@FUZZ
@given(body=envelopes(send_params))
def test_random_sends_are_all_answered(srv, body):
    exchange(srv, "/longpolling/send", body)


def test_after_the_fuzzing_the_server_serves_and_holds_nothing(srv):
    assert srv.process.poll() is None, srv.logs()
    wait_for(lambda: health(srv.url)["waiters"] == 0, within=10,
             message=f"abandoned polls left waiters: {health(srv.url)}")
    srv.send("after-fuzz", "fine")
    assert [item["message"] for item in srv.poll(["after-fuzz"], 0)] == ["fine"]
    assert "Traceback" not in srv.logs(), srv.logs()[-3000:]
