"""The wal-index header tells whether anything was committed, by any connection or
process, on real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from plansmith_server.storage.wal_index import WalIndex


@pytest.fixture
def wal_db(tmp_path: Path):
    path = str(tmp_path / "w.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    index = WalIndex.open(path, 4096)
    assert index is not None and index.usable
    yield path, conn, index
    conn.close()
    index.close()  # after the connection: closing it drops the process's locks


def test_the_header_stays_while_nothing_is_committed(wal_db):
    path, conn, index = wal_db
    before = index.header()
    assert before is not None and len(before) == 48
    conn.execute("SELECT * FROM t").fetchall()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("ROLLBACK")  # nothing committed
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    reader.execute("SELECT count(*) FROM t").fetchall()
    reader.close()
    assert index.header() == before


def test_every_commit_moves_the_header(wal_db):
    _, conn, index = wal_db
    seen = {index.header()}
    for i in range(5):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        seen.add(index.header())
    assert len(seen) == 6 and None not in seen


def test_a_commit_by_another_process_moves_the_header(wal_db):
    path, _, index = wal_db
    before = index.header()
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO t VALUES (9)'); c.commit()"  # noqa: E501
    subprocess.run([sys.executable, "-c", code, path], check=True, timeout=60)
    after = index.header()
    assert after is not None and after != before


def test_a_restarted_wal_never_repeats_a_header(wal_db):
    """After a checkpoint the next writer starts the WAL over from its first frame: the
    same frame count again, but new salts."""
    _, conn, index = wal_db
    conn.execute("INSERT INTO t VALUES (1)")
    first = index.header()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("INSERT INTO t VALUES (1)")  # the same change, from an emptied WAL
    assert index.header() not in (None, first)


def test_there_is_no_index_without_wal_mode_or_for_another_page_size(tmp_path: Path):
    path = str(tmp_path / "j.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    assert WalIndex.open(path, 4096) is None  # rollback journal: no -shm file
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("SELECT * FROM t").fetchall()  # a first read sets the index up
    index = WalIndex.open(path, 4096)  # no page written to the WAL yet: any size goes
    assert index is not None and index.usable
    empty = index.header()
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert index.header() not in (None, empty)
    other = WalIndex.open(path, 8192)  # not the file's pages: not its header
    assert other is not None and not other.usable and other.header() is None
    conn.close()
    index.close()
    other.close()


async def test_the_store_reads_the_index_of_a_reopened_database(tmp_path: Path):
    """Closed cleanly, a database leaves no WAL; reopened, its index has no frames yet."""
    from plansmith_server.storage.sqlite import SqliteStore

    for _ in range(2):
        store = SqliteStore(str(tmp_path / "re.db"))
        await store.open()
        try:
            assert store._wal_index is not None and store._wal_index.usable
            header = store._wal_index.header()
            assert header is not None
        finally:
            await store.close()
    assert header[14:16] == bytes(2)  # szPage: no page in the WAL yet


async def test_opening_the_index_keeps_sqlites_locks_for_other_processes(tmp_path: Path):
    """Closing any descriptor of a file drops the process's fcntl locks on it. Had the
    store closed one of the -shm file while serving, the next process to open the
    database would take itself for the first and rebuild the index under the server's
    connections (seen: iChange back to 0, the file truncated)."""
    import asyncio
    import os

    from plansmith_server.storage.sqlite import SqliteStore

    path = str(tmp_path / "locks.db")
    store = SqliteStore(path)
    await store.open()
    try:
        await store.write(lambda tx: tx.schema_objects())
        assert store._wal_index is not None
        before = store._wal_index.header()
        code = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT count(*) FROM sqlite_master').fetchall(); c.close()"
        )
        reader = await asyncio.create_subprocess_exec(sys.executable, "-c", code, path)
        assert await asyncio.wait_for(reader.wait(), 60) == 0
        assert store._wal_index.header() == before  # a reader changes nothing
        if os.path.exists("/proc/locks"):  # Linux: SQLite's lock on the file is still held
            inode = os.stat(path + "-shm").st_ino
            mine = [
                line
                for line in Path("/proc/locks").read_text().splitlines()
                if f":{inode} " in line and f" {os.getpid()} " in line
            ]
            assert mine, "this process holds no lock on the -shm file"
    finally:
        await store.close()


def fake_shm(tmp_path: Path, first: bytes, second: bytes) -> str:
    """A database path whose -shm file holds these two header copies (no database)."""
    db = str(tmp_path / "fake.db")
    Path(db + "-shm").write_bytes(first + second + bytes(32768 - 96))
    return db


def header_bytes(*, version=3007000, init=1, page=4096, frames=7) -> bytes:
    import struct

    head = struct.pack("=IIIBBHII", version, 0, 1, init, 0, page, frames, 2)
    return head + bytes(48 - len(head))


def test_two_copies_that_differ_read_as_unknown(tmp_path: Path):
    """What a reader sees while a commit rewrites the header."""
    db = fake_shm(tmp_path, header_bytes(frames=7), header_bytes(frames=7))
    index = WalIndex.open(db, 4096)
    assert index is not None and index.usable and index.header() == header_bytes(frames=7)
    with open(db + "-shm", "r+b") as f:  # the second copy first, as a commit writes them
        f.seek(48)
        f.write(header_bytes(frames=8))
        f.flush()
        assert index.header() is None
        f.seek(0)
        f.write(header_bytes(frames=8))
    assert index.header() == header_bytes(frames=8)
    index.close()


def test_an_index_torn_at_every_try_is_not_used(tmp_path: Path):
    index = WalIndex.open(fake_shm(tmp_path, header_bytes(frames=7), header_bytes(frames=8)), 4096)
    assert index is not None and not index.usable and index.header() is None
    index.close()


@pytest.mark.parametrize(
    "header",
    [header_bytes(init=0), header_bytes(version=3007001), bytes(48)],
    ids=["not initialized", "unknown version", "zeros"],
)
def test_a_header_this_module_does_not_know_is_not_used(tmp_path: Path, header: bytes):
    index = WalIndex.open(fake_shm(tmp_path, header, header), 4096)
    assert index is not None and not index.usable and index.header() is None
    index.close()


def test_a_short_or_missing_file_is_not_used(tmp_path: Path):
    db = str(tmp_path / "short.db")
    assert WalIndex.open(db, 4096) is None
    Path(db + "-shm").write_bytes(bytes(40))
    index = WalIndex.open(db, 4096)
    assert index is not None and not index.usable
    index.close()


def test_a_closed_index_reads_as_unknown(wal_db):
    _, _, index = wal_db
    index.close()
    assert index.header() is None
    index.close()  # twice is fine
