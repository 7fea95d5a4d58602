"""The benchmark database: create it, migrate it, empty it, and read what a run cost it.

Everything here talks to PostgreSQL through its own psycopg connection (autocommit), never through
Django's, so that measuring never joins or delays a transaction of the code being measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parents[1]

# The tables the harness writes (tasks_app models, in FK order for the record) and the baseline's.
HORIZON_TABLES = (
    "tasks_app_agenttask",
    "tasks_app_step",
    "tasks_app_event",
    "tasks_app_checkpoint",
    "tasks_app_journalentry",
    "tasks_app_workspacefile",
)
BASELINE_TABLE = "bench_baseline"
BASELINE_DDL = f"""
CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (
    id bigserial PRIMARY KEY,
    run text NOT NULL,
    i integer NOT NULL,
    -- clock_timestamp(), not now(): the time of this INSERT, not of the transaction's start.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it is missing (through the `postgres` maintenance db)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with connect(maintenance) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "horizon_project.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, capture_output=False
    )
    with connect(url) as conn:
        conn.execute(BASELINE_DDL)


def prepare(url: str) -> None:
    """Create the benchmark database if it is missing and migrate it: how every benchmark opens."""
    ensure_database(url)
    migrate(url)


def truncate_all(conn: psycopg.Connection) -> None:
    tables = ", ".join((*HORIZON_TABLES, BASELINE_TABLE))
    conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def checkpoint(conn: psycopg.Connection) -> None:
    # After a checkpoint the first change to every page writes a full-page image into the WAL.
    # Forcing one before each run makes every run start from the same state, so runs compare.
    conn.execute("CHECKPOINT")


def wal_insert_lsn(conn: psycopg.Connection) -> str:
    # The insert position, not pg_current_wal_lsn() (the write position), which can lag behind
    # records that are inserted but not yet written out: the insert position is what was generated.
    return conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]


def wal_bytes_between(conn: psycopg.Connection, before: str, after: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", [after, before]).fetchone()[0])


def wal_flush_lsn(conn: psycopg.Connection) -> str:
    # pg_walinspect reads only WAL that is already flushed; a committed run is (synchronous_commit).
    return conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]


# WAL is cluster-wide: the LSN difference counts whatever else the cluster did meanwhile (other
# databases, other test runs). pg_walinspect lets us keep only the records that touched a block of
# this database, plus the commit records of the transactions that did. Each record is charged to
# the relation of its first block reference ("blkref #0: rel <tablespace>/<database>/<filenode>").
WAL_BY_RELATION = """
WITH r AS (
    SELECT xid::text::bigint AS xid, resource_manager, record_length, fpi_length,
           substring(block_ref FROM 'rel [0-9]+/([0-9]+)/[0-9]+')::oid AS db,
           substring(block_ref FROM 'rel [0-9]+/[0-9]+/([0-9]+)')::oid AS filenode
    FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn)
),
ours AS (SELECT DISTINCT xid FROM r WHERE db = %(db)s AND xid <> 0)
SELECT coalesce(pg_filenode_relation(0, filenode)::text, '(' || resource_manager || ')') AS what,
       count(*), sum(record_length), sum(fpi_length)
FROM r
WHERE db = %(db)s OR (db IS NULL AND xid IN (SELECT xid FROM ours))
GROUP BY 1
"""


def wal_slot(conn: psycopg.Connection) -> str:
    """The slot's name: one per benchmark database, since slots are cluster-wide and two benchmarks
    (on two databases) may run at once."""
    name = conn.execute("SELECT current_database()").fetchone()[0]
    return ("horizon_wal_" + "".join(c if c.isalnum() else "_" for c in name.lower()))[:63]


def hold_wal(conn: psycopg.Connection) -> bool:
    """Keep the WAL from now on until release_wal(), so that pg_walinspect can still read it after the run.

    Without it, a checkpoint during the run (anyone's: CREATE DATABASE of a test run forces one) may
    recycle the segment where the run began. A temporary physical slot goes away with this session,
    so a crashed benchmark cannot leave the cluster holding WAL.
    """
    release_wal(conn)
    try:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", [wal_slot(conn)])
    except psycopg.Error:
        return False
    return True


def release_wal(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", [wal_slot(conn)])


def enable_walinspect(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except psycopg.Error:
        return False
    return True


def wait_for_flush(conn: psycopg.Connection, lsn: str, timeout: float = 5.0) -> None:
    """Wait until the WAL up to `lsn` is flushed: pg_walinspect reads no further ("cannot accept future
    end LSN"). An insert position may be ahead of it after asynchronous commits (a tick's claim and
    its model answer do not wait for a flush); the WAL writer flushes them within wal_writer_delay."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT pg_current_wal_flush_lsn() < %s::pg_lsn", [lsn]).fetchone()[0]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the WAL up to {lsn} was not flushed within {timeout:.0f}s")
        time.sleep(0.05)


def wal_of_database(conn: psycopg.Connection, start: str, end: str) -> dict[str, dict[str, int]] | None:
    """{relation or '(resource manager)': {"records", "bytes", "fpi_bytes"}} of the WAL this database wrote.

    None when the WAL is no longer there to read (see hold_wal).
    """
    db = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
    wait_for_flush(conn, end)
    try:
        rows = conn.execute(WAL_BY_RELATION, {"start": start, "end": end, "db": db}).fetchall()
    except psycopg.errors.UndefinedFile:
        return None
    return {what: {"records": int(n), "bytes": int(size), "fpi_bytes": int(fpi)} for what, n, size, fpi in rows}


def relation_sizes(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, int]:
    """pg_total_relation_size (heap + TOAST + every index) per table, in bytes (8 KiB page granularity)."""
    rows = conn.execute(
        "SELECT t, pg_total_relation_size(t::regclass) FROM unnest(%s::text[]) AS t",
        [list(tables)],
    ).fetchall()
    return {name: int(size) for name, size in rows}


def index_sizes(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, int]:
    rows = conn.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
        FROM pg_index i WHERE i.indrelid = ANY(%s::text[]::regclass[])
        """,
        [list(tables)],
    ).fetchall()
    return {name: int(size) for name, size in rows}


def sessions_opened(conn: psycopg.Connection) -> int:
    """pg_stat_database.sessions of this database: connections ever opened (as far as backends reported)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0])


def server_version(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT version()").fetchone()[0]


def setting(conn: psycopg.Connection, name: str) -> str:
    return conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0]
