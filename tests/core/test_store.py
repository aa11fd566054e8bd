"""The `bus_bus` table and the model-level fetch behave as Odoo 14's."""

import contextlib

import psycopg2
import pytest
from bus_fixtures import GOLDEN

from imbus import store


@pytest.fixture
def cr(dsn):
    with contextlib.closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        yield cursor
        conn.rollback()


def golden_columns(table):
    text = (GOLDEN / "odoo14_schema.txt").read_text()
    section = text.split(f'Table "public.{table}"')[1].split("Indexes:")[0]
    rows = [line.split("|") for line in section.splitlines() if line.count("|") >= 4]
    return {cells[0].strip(): cells[1].strip() for cells in rows if cells[0].strip() != "Column"}


def test_table_has_the_columns_odoo_creates(cr):
    cr.execute("SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns"
               " JOIN pg_attribute ON attrelid = 'bus_bus'::regclass AND attname = column_name"
               " WHERE table_name = 'bus_bus'")
    assert dict(cr.fetchall()) == golden_columns("bus_bus")
    cr.execute("SELECT pg_get_serial_sequence('bus_bus', 'id')")
    assert cr.fetchone()[0] == "public.bus_bus_id_seq"


def test_insert_stores_encoded_channel_and_message(cr):
    ids = store.insert(cr, [(("db", "res.partner", 3), {"a": 1}), ("x", "hello")])
    cr.execute("SELECT id, channel, message, create_date IS NOT NULL FROM bus_bus ORDER BY id")
    assert cr.fetchall() == [(ids[0], '["db","res.partner",3]', '{"a":1}', True), (ids[1], '"x"', '"hello"', True)]


def test_fetch_after_last_returns_newer_rows_of_the_channels_oldest_first(cr):
    first, second, _, fourth = store.insert(cr, [("a", 1), ("a", 2), ("b", 3), (["a"], 4)])
    assert store.fetch(cr, ["a", ("a",)], last=first) == [
        {"id": second, "channel": "a", "message": 2},
        {"id": fourth, "channel": ["a"], "message": 4},
    ]


def test_fetch_with_last_zero_returns_the_last_50_seconds(cr):
    old, recent = store.insert(cr, [("a", "old"), ("a", "recent")])
    cr.execute("UPDATE bus_bus SET create_date = create_date - interval '51 seconds' WHERE id = %s", [old])
    assert store.fetch(cr, ["a"], last=0) == [{"id": recent, "channel": "a", "message": "recent"}]


def test_fetch_of_no_channel_is_empty(cr):
    store.insert(cr, [("a", 1)])
    assert store.fetch(cr, [], last=0) == []


def test_gc_deletes_rows_older_than_100_seconds(cr):
    old, young = store.insert(cr, [("a", 1), ("a", 2)])
    cr.execute("UPDATE bus_bus SET create_date = create_date - interval '101 seconds' WHERE id = %s", [old])
    assert store.gc(cr) == 1
    cr.execute("SELECT id FROM bus_bus")
    assert cr.fetchall() == [(young,)]


def test_create_table_leaves_an_existing_table_alone(cr):
    store.insert(cr, [("a", 1)])
    store.create_table(cr)
    cr.execute("SELECT count(*) FROM bus_bus")
    assert cr.fetchone()[0] == 1


def test_reads_of_the_feed_are_bounded_and_carry_the_databases_clock(cr):
    ids = store.insert(cr, [("a", n) for n in range(5)])
    rows, now = store.since(cr, ids[0], 3)
    assert [row.id for row in rows] == ids[1:4]
    assert [row.id for row in store.latest(cr, 2)[0]] == ids[3:]
    cr.execute("SELECT statement_timestamp() at time zone 'utc'")
    assert abs((cr.fetchone()[0] - now).total_seconds()) < 1
    rows, now = store.since(cr, ids[-1], 3)
    assert rows == [] and now is not None  # the clock, even without rows


def test_a_cold_read_is_bounded(cr):
    ids = store.insert(cr, [("a", n) for n in range(5)])
    assert [row.id for row in store.select(cr, ['"a"'], ids[0], limit=2)] == ids[1:3]
