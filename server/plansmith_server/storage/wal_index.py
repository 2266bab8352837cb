"""Whether an SQLite database in WAL mode has changed, told by a memory read.

Every commit, by any connection of any process, rewrites the wal-index header at the start
of the database's `-shm` file (https://www.sqlite.org/walformat.html, section 2.2): the
last valid frame, a change counter and the frames' checksum move with each commit, and a
WAL restart draws new salts. So while the header reads the same, nothing was committed,
and a value read from the database earlier is still what a new read would return.

Reading it costs a copy of 96 bytes from shared memory, against a few microseconds of
CPU and two `fcntl` system calls for the shortest SQLite read (it takes and drops a
read lock); under load that read cost GetTask a seventh of its throughput.

The header is stored twice: a commit writes the second copy, then (after a memory
barrier) the first, and SQLite's readers take two copies that agree as one consistent
header. So does `header()`, without the barrier and the checksum: a torn read yields a
header that never existed or the one being written, and either only differs from the
last one seen, which costs a needless trip to the database, never a stale answer.

Descriptors: POSIX drops every `fcntl` lock a process holds on a file when the process
closes *any* descriptor of that file, and SQLite holds a lock on the `-shm` file for as
long as a connection is open (it tells other processes that the index is in use; without
it the next process to open the database rebuilds the index under this one's feet). So
the descriptor and the mapping (which holds a duplicate of it) stay open until the
owner's connections are closed: `close()` comes after them, and an index this module
cannot read is kept open too, just unused.
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
# A commit rewrites the header in well under a microsecond: a torn read at startup is
# retried this many times before the index is given up.
_TRIES = 1000


class WalIndex:
    """The wal-index header of one database, mapped read-only. `usable` says whether it
    is one this module reads; `header()` of an unusable index is always None."""

    def __init__(self, fd: int, page_size: int) -> None:
        self._fd: int | None = fd
        self._map: mmap.mmap | None = None
        self.usable = False
        try:
            self._map = mmap.mmap(fd, 2 * _HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # shorter than a header
            return
        for _ in range(_TRIES):
            header = self._read()
            if header is not None:
                version, _, _, _, _, size = _PREFIX.unpack_from(header)
                # szPage holds 65536 as 1 (16 bits wide), and 0 before any commit.
                self.usable = version == _VERSION and size in (
                    0,
                    page_size if page_size != 65536 else 1,
                )
                return

    @classmethod
    def open(cls, db_path: str, page_size: int) -> WalIndex | None:
        """The wal-index beside the database at `db_path`, whose pages have `page_size`
        bytes; the caller holds a connection in WAL mode open, and closes the index only
        after its last connection (see the module docstring). None if there is no
        `-shm` file to open; an index that is not `usable` must be closed all the same."""
        try:
            fd = os.open(db_path + "-shm", os.O_RDONLY)
        except OSError:
            return None
        return cls(fd, page_size)

    def _read(self) -> bytes | None:
        m = self._map  # mapped while `usable` (`header` asks only then) and at open
        assert m is not None
        first = m[:_HEADER]
        second = m[_HEADER : 2 * _HEADER]
        if first != second or first[12] != 1:  # isInit
            return None
        return first

    def header(self) -> bytes | None:
        """The current header; None while a commit rewrites it, for an index that is not
        usable, or once closed."""
        return self._read() if self.usable else None

    def close(self) -> None:
        """Unmaps the header and closes the file. Only once the owner's connections to the
        database are closed: this drops the process's locks on the file."""
        self.usable = False
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
