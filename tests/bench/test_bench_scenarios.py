"""Each scenario, tiny, against a real standalone server: the numbers are measured."""

import json
import subprocess
import sys

import pytest

from imbus.bench import scenarios
from imbus.bench.http import loopback_address
from imbus.bench.targets import Standalone

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture
def srv(server):
    """A server on a fresh database: the bench creates `pg_stat_statements` there itself."""
    return server()


def clean(result, expected):
    assert result["expected"] == expected
    assert result["delivered"] == expected
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["unexpected"] == 0
    assert result["http_errors"] == 0
    assert result["rpc_errors"] == 0
    assert not result.get("timed_out")


def test_pingpong_measures_each_message_and_the_statements_behind_it(srv):
    result = scenarios.pingpong(Standalone(srv.url), messages=5, dsn=srv.dsn, deadline=30)
    clean(result, 5)
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 5000
    inserts = [each for each in result["sql"]["top"] if each["query"].startswith("INSERT INTO bus_bus")]
    assert inserts[0]["calls"] == 5  # one INSERT per send
    assert result["sql"]["fetch"] >= 1


def test_broadcast_reaches_every_poller_with_statements_independent_of_pollers(srv):
    few, many = (scenarios.broadcast(Standalone(srv.url), pollers=pollers, messages=2, dsn=srv.dsn, deadline=60)
                 for pollers in (2, 20))
    clean(few, 2 * 2)
    clean(many, 2 * 20)
    assert len(few["broadcasts"]["last_poller_ms"]) == len(many["broadcasts"]["last_poller_ms"]) == 2
    assert many["broadcasts"]["fetch_per_broadcast"] == few["broadcasts"]["fetch_per_broadcast"]  # not one per poller
    assert many["broadcasts"]["sql_per_broadcast"] <= few["broadcasts"]["sql_per_broadcast"] + 1


def test_broadcast_counts_the_polls_held_by_every_worker(server):
    """With `--workers 2` each `/health` speaks for one worker: the bench must sum them,
    or it never sees all its polls held and reports an error after its wait."""
    srv = server("--workers", "2")
    result = scenarios.broadcast(Standalone(srv.url), pollers=20, messages=2, dsn=srv.dsn, deadline=60)
    clean(result, 2 * 20)
    assert len(result["broadcasts"]["last_poller_ms"]) == 2


def test_fanout_delivers_each_message_to_its_channel_only(srv):
    result = scenarios.fanout(Standalone(srv.url), pollers=6, channels=3, rate=100, duration=0.3, senders=2,
                              dsn=srv.dsn, server_pid=srv.pid, deadline=60)
    clean(result, 2 * 30)  # two pollers per channel
    assert result["sent"] == 30
    assert result["delivered_per_s"] > 0
    assert result["sql"]["total"] > 0


def test_idle_reports_the_servers_memory_and_cpu_then_broadcasts(srv):
    result = scenarios.idle(Standalone(srv.url), pollers=5, hold=0.5, server_pid=srv.pid, deadline=60)
    clean(result, 5)
    resident_mb = int(subprocess.check_output(["ps", "-o", "rss=", "-p", str(srv.pid)], text=True)) / 1024
    for measured in (result["rss_before_mb"], result["rss_held_mb"]):
        assert 0.5 * resident_mb < measured < 2 * resident_mb
    assert 0 <= result["cpu_idle_percent"] < 50  # five held polls keep a server all but idle
    assert len(result["broadcasts"]["last_poller_ms"]) == 1
    assert result["sql"] == {"n/a": "no --dsn given"}


def test_soak_with_abandoned_polls_loses_nothing_and_samples_memory(srv):
    result = scenarios.soak(Standalone(srv.url), pollers=8, channels=4, rate=40, duration=2.5, churn=0.5,
                            dsn=srv.dsn, server_pid=srv.pid)
    clean(result, 2 * 100)
    assert result["reconnects"] > 0
    assert result["rss_mb"]["max"] > 0


def test_a_scenario_stops_at_its_deadline(srv):
    result = scenarios.fanout(Standalone(srv.url), pollers=2, channels=2, rate=10, duration=30, deadline=1.5)
    assert result["timed_out"]
    assert result["sent"] < 300


def test_only_loopback_servers_are_driven():
    assert loopback_address("http://127.0.0.1:8072") == ("127.0.0.1", 8072)
    with pytest.raises(ValueError):
        loopback_address("http://192.0.2.1:8072")


def test_the_command_line_prints_a_row_and_json(srv):
    command = [sys.executable, "-m", "imbus.bench", "--url", srv.url, "--dsn", srv.dsn, "--quiet", "--json",
               "pingpong", "--messages", "3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    header, line, blob = done.stdout.splitlines()
    assert header.startswith("scenario")
    assert line.startswith("pingpong")
    result = json.loads(blob)
    clean(result, 3)
    assert result["sql"]["total"] > 0


def test_a_server_that_refuses_the_marker_stops_the_bench_with_one_line(server):
    guarded = server("--send-token", "secret")  # the bench is not given the token: its marker send is refused
    command = [sys.executable, "-m", "imbus.bench", "--url", guarded.url, "--quiet", "pingpong", "--messages", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("python -m imbus.bench: pingpong: sending the marker failed: ")
    assert len(done.stderr.splitlines()) == 1


def test_more_pollers_than_select_can_watch_still_get_sends(srv):
    """1,100 open polls put the server's descriptors past 1024, where `select()` gives up."""
    result = scenarios.broadcast(Standalone(srv.url), pollers=1100, messages=1, dsn=srv.dsn, deadline=90)
    clean(result, 1100)
    assert result["broadcasts"]["fetch_per_broadcast"] == 1


def test_late_commits_arrive_once_and_are_timed_from_their_commit(srv):
    result = scenarios.late(Standalone(srv.url), messages=3, dsn=srv.dsn, deadline=60)
    clean(result, 6)  # each round: the send that commits first, then the held row
    assert 0 < result["late_ms"]["p50"] <= result["late_ms"]["max"] < 5000
    numbered = [each for each in result["sql"]["top"] if each["query"].startswith("UPDATE bus_bus SET id")]
    assert numbered and numbered[0]["calls"] == 6  # each row numbered at its commit (trigger); none re-issued


def test_late_needs_the_servers_database(srv):
    with pytest.raises(ValueError, match="--dsn"):
        scenarios.late(Standalone(srv.url), messages=1)
