"""The commit-order trigger: ids become visible in id order, whoever writes."""

import contextlib
import logging
import random
import threading
import time

import psycopg2
import pytest

from imbus import ordering, store


def connect(dsn, autocommit=False):
    conn = psycopg2.connect(dsn)
    conn.autocommit = autocommit
    return conn


@pytest.fixture
def reader(dsn):
    with contextlib.closing(connect(dsn, autocommit=True)) as conn, conn.cursor() as cr:
        yield cr


def ids_above(cr, high):
    cr.execute("SELECT id FROM bus_bus WHERE id > %s ORDER BY id", [high])
    return [row[0] for row in cr.fetchall()]


def test_a_row_committed_after_a_higher_id_appears_above_it(dsn, reader):
    with contextlib.closing(connect(dsn)) as slow, contextlib.closing(connect(dsn)) as fast:
        (taken,) = store.insert(slow.cursor(), [("a", "slow")])
        store.insert(fast.cursor(), [("a", "fast")])
        fast.commit()
        (high,) = ids_above(reader, 0)
        assert high > taken  # the fast row was renumbered at its commit too
        slow.commit()
    (late,) = ids_above(reader, high)  # a reader past `high` still sees it
    reader.execute("SELECT message FROM bus_bus WHERE id = %s", [late])
    assert reader.fetchone()[0] == '"slow"'


def test_without_the_trigger_a_row_committed_late_hides_below_what_readers_passed(dsn, reader):
    """Why the trigger exists: stock Odoo's table."""
    reader.execute(f"DROP TRIGGER {ordering.TRIGGER} ON bus_bus")
    with contextlib.closing(connect(dsn)) as slow, contextlib.closing(connect(dsn)) as fast:
        store.insert(slow.cursor(), [("a", "slow")])
        store.insert(fast.cursor(), [("a", "fast")])
        fast.commit()
        (high,) = ids_above(reader, 0)
        slow.commit()
    assert ids_above(reader, high) == []
    assert len(ids_above(reader, 0)) == 2


def test_concurrent_commits_in_scrambled_order_are_seen_in_id_order(dsn, reader):
    """Writers insert, dawdle a random while and commit; a reader that only ever asks for
    ids above the highest it has seen ends up with every committed row."""
    failures = []

    def write(seed):
        rng = random.Random(seed)
        try:
            with contextlib.closing(connect(dsn)) as conn, conn.cursor() as cr:
                for _ in range(15):
                    store.insert(cr, [("a", rng.random()) for _ in range(rng.randint(1, 3))])
                    time.sleep(rng.uniform(0, 0.015))
                    conn.commit()
        except Exception as error:  # reported by the test, not lost in a thread
            failures.append(error)

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(8)]
    for writer in writers:
        writer.start()
    seen, high = [], 0
    deadline = time.monotonic() + 60
    while True:
        finished = not any(writer.is_alive() for writer in writers)  # then this read is the last
        fresh = ids_above(reader, high)
        seen += fresh
        high = fresh[-1] if fresh else high
        if finished:
            break
        assert time.monotonic() < deadline, "the writers did not finish"
    for writer in writers:
        writer.join()
    assert not failures
    assert seen == sorted(set(seen))
    assert seen == ids_above(reader, 0)
    assert len(seen) > 8 * 15


def test_the_rows_of_one_transaction_keep_their_order_and_are_dated_at_commit(dsn, reader):
    with contextlib.closing(connect(dsn)) as conn, conn.cursor() as cr:
        store.insert(cr, [("a", n) for n in range(5)])
        cr.execute("UPDATE bus_bus SET create_date = create_date - interval '150 seconds'")  # a long transaction
        conn.commit()
    reader.execute("SELECT message, create_date, write_date FROM bus_bus ORDER BY id")
    rows = reader.fetchall()
    assert [message for message, _, _ in rows] == ["0", "1", "2", "3", "4"]
    assert all(created == written for _, created, written in rows)
    assert store.gc(reader) == 0  # young: it just appeared


def test_install_is_idempotent_and_safe_from_two_servers_at_once(dsn, reader):
    errors = []

    def install():
        try:
            with contextlib.closing(connect(dsn, autocommit=True)) as conn, conn.cursor() as cr:
                barrier.wait(10)
                ordering.install(cr)
        except Exception as error:
            errors.append(error)

    barrier = threading.Barrier(4)
    reader.execute(f"DROP TRIGGER {ordering.TRIGGER} ON bus_bus")
    assert not ordering.installed(reader)
    threads = [threading.Thread(target=install) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert ordering.installed(reader)
    reader.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bus_bus'::regclass AND tgname = %s",
                   [ordering.TRIGGER])
    assert reader.fetchone()[0] == 1


def test_a_disabled_trigger_does_not_count_as_installed(reader):
    reader.execute(f"ALTER TABLE bus_bus DISABLE TRIGGER {ordering.TRIGGER}")
    assert not ordering.installed(reader)


def test_a_sequence_cache_above_one_is_named_in_a_warning(reader, caplog):
    reader.execute("ALTER SEQUENCE bus_bus_id_seq CACHE 20")
    with caplog.at_level(logging.WARNING, logger="imbus"):
        ordering.install(reader)
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "CACHE 20" in warning and "ALTER SEQUENCE public.bus_bus_id_seq CACHE 1" in warning
    reader.execute("ALTER SEQUENCE bus_bus_id_seq CACHE 1")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imbus"):
        ordering.install(reader)
    assert caplog.records == []
