"""Ids of `bus_bus` become visible in id order, for every writer: the commit-order trigger.

A serial id is taken at INSERT but the row becomes visible at COMMIT, so without help a
reader can see id 12 while id 11 is still in flight; a poller that moves past 12 never
gets 11 (stock Odoo loses it). Here a deferred constraint trigger runs when the inserting
transaction commits: under one transaction-level advisory lock it gives each new row a
fresh id from the sequence and dates it with the commit time. PostgreSQL makes a commit
visible before it releases the transaction's locks, so whoever takes the lock next, and
its ids, come after: once a reader sees id X, every id below X that will ever be visible
already is. The ids taken at insert are left as holes that never fill.

It works whoever writes (Odoo's ORM, raw SQL, the standalone sender, stock code on
another server sharing the database) and needs the sequence's CACHE to be 1 (Odoo's and
ours are): with a larger cache each connection draws ids from a block of its own.

Cost: commits that insert into `bus_bus` take turns for the time of their commit (with
`fsync` on, one WAL flush each instead of one for a group); see docs/exactly-once.md.

Installed by `store.create_table` (standalone) and by model `bus.bus`'s `init()` (Odoo, on
install and `-u bus`); idempotent. Logs one warning when the sequence's cache is not 1.
"""

import logging

_logger = logging.getLogger(__name__)

LOCK = 7596836403031274084  # pg_advisory_xact_lock key of the commit order ("imbusord")
INSTALL_LOCK = 7596836403030879859  # serializes concurrent installs ("imbusins")
FUNCTION = "imbus_commit_order"
TRIGGER = "imbus_commit_order"

# One statement, so that it is one transaction under the install lock on an autocommit
# cursor too (two servers starting at once must not both create the trigger).
INSTALL = f"""
DO $install$
BEGIN
    PERFORM pg_advisory_xact_lock(%(install_lock)s);
    CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
    DECLARE
        stamp timestamp;
    BEGIN
        PERFORM pg_advisory_xact_lock(%(lock)s);
        stamp := clock_timestamp() AT TIME ZONE 'utc';
        UPDATE bus_bus SET id = nextval(%(sequence)s::regclass), create_date = stamp, write_date = stamp
         WHERE id = NEW.id;
        RETURN NULL;
    END
    $body$;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'bus_bus'::regclass AND tgname = %(trigger)s) THEN
        CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT ON bus_bus DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE PROCEDURE {FUNCTION}();
    END IF;
END
$install$
"""


def install(cr) -> None:
    """Create or update the trigger on an existing `bus_bus` table."""
    cr.execute("SELECT pg_get_serial_sequence('bus_bus', 'id')")
    (sequence,) = cr.fetchone()
    if sequence is None:
        raise RuntimeError("bus_bus.id has no sequence: the table was not created by Odoo or imbus")
    cr.execute(INSTALL, {"install_lock": INSTALL_LOCK, "lock": LOCK, "sequence": sequence, "trigger": TRIGGER})
    cr.execute("SELECT seqcache FROM pg_sequence WHERE seqrelid = %s::regclass", [sequence])
    (cache,) = cr.fetchone()
    if cache != 1:
        _logger.warning("bus: sequence %s has CACHE %s: ids of bus_bus are visible in commit order only with"
                        " CACHE 1; run ALTER SEQUENCE %s CACHE 1", sequence, cache, sequence)


def installed(cr) -> bool:
    """Whether the trigger is there and enabled."""
    cr.execute("SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'bus_bus'::regclass AND tgname = %s", [TRIGGER])
    row = cr.fetchone()
    return row is not None and row[0] != "D"
