"""Whether an SQLite database in WAL mode has changed, told by a memory read.

Every commit, by any connection of any process, rewrites the wal-index header at the start
of the database's `-shm` file (https://www.sqlite.org/walformat.html, section 2.2): the
last valid frame, a change counter and the frames' checksum move with each commit, and a
WAL restart draws new salts. So while the header reads the same, nothing was committed,
and a value read from the database earlier is still what a new read would return.

Reading it costs a copy of 96 bytes from shared memory, against a few microseconds of
CPU and two `fcntl` system calls for the shortest SQLite read (it takes and drops a
read lock); under load that read cost GetTask a seventh of its throughput.

The header is read as SQLite's own readers read it (`walIndexTryHdr`): it is stored
twice, the second copy first and the first after a memory barrier, so two copies that
agree and say the index is initialized are one consistent header. Anything else (a
commit being written, an unknown format) reads as None: changed, ask the database.
"""

from __future__ import annotations

import mmap
import os
import struct

_HEADER = 48  # one copy of the WalIndexHdr
# WalIndexHdr: iVersion u32, unused u32, iChange u32, isInit u8, bigEndCksum u8,
# szPage u16, mxFrame u32, nPage u32, ... (native byte order)
_PREFIX = struct.Struct("=IIIBBH")
_VERSION = 3007000  # WALINDEX_MAX_VERSION, the only wal-index format there has been


class WalIndex:
    """The wal-index header of one database, mapped read-only."""

    def __init__(self, shm_path: str) -> None:
        fd = os.open(shm_path, os.O_RDONLY)
        try:
            self._map: mmap.mmap | None = mmap.mmap(fd, 2 * _HEADER, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)

    @classmethod
    def open(cls, db_path: str, page_size: int) -> WalIndex | None:
        """The wal-index of the database at `db_path`, if it has one this module reads: a
        `-shm` file beside it holding an initialized header of the known version, for
        pages of `page_size` bytes or before any page was written (the caller holds a
        connection in WAL mode open, so the file exists and stays). None otherwise."""
        try:
            index = cls(db_path + "-shm")
        except (OSError, ValueError):  # no such file, or shorter than a header
            return None
        header = index.header()
        if header is None:
            index.close()
            return None
        version, _, _, _, _, size = _PREFIX.unpack_from(header)
        # szPage holds 65536 as 1 (it is 16 bits wide), and 0 until a first commit.
        if version != _VERSION or size not in (0, page_size if page_size != 65536 else 1):
            index.close()
            return None
        return index

    def header(self) -> bytes | None:
        """The current header, or None while a commit is rewriting it (or once closed)."""
        m = self._map
        if m is None:
            return None
        first = m[:_HEADER]
        second = m[_HEADER : 2 * _HEADER]
        if first != second or first[12] != 1:  # isInit
            return None
        return first

    def close(self) -> None:
        """Unmaps the header. Call it before the last connection to the database closes:
        SQLite may then truncate the file, and reading a truncated mapping is SIGBUS."""
        if self._map is not None:
            self._map.close()
            self._map = None
