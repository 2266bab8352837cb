"""`plansmith-server migrate --from data/plansmith.db --to postgresql://...`: copies an
SQLite database into an empty PostgreSQL one (`storage/copy.py`), verified by counts and
checksums. Exit 0 copied, 1 not copied (the target unchanged), 2 bad arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from plansmith_server.storage import dsn
from plansmith_server.storage.copy import CopyError, copy_sqlite_to_postgres


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="plansmith-server migrate",
        description="Copy an SQLite database (plans, tasks, change log, request ids) into "
        "an empty PostgreSQL database, verified by counts and checksums.",
    )
    p.add_argument("--from", dest="source", required=True, help="the SQLite database file")
    p.add_argument("--to", dest="target", required=True, help="postgresql://user@host/db")
    args = p.parse_args(argv)
    if not dsn.is_postgres(args.target):
        p.error(f"--to {dsn.redact_url(args.target)!r}: give a postgresql:// URL")
    try:
        target = dsn.parse(args.target)
    except dsn.DsnError as exc:
        p.error(f"--to {exc}")
    try:
        reports = copy_sqlite_to_postgres(args.source, target)
    except CopyError as exc:
        print(f"plansmith-server migrate: {exc}", file=sys.stderr)
        return 1
    for r in reports:
        print(f"{r.table:<18} {r.rows:>9} rows  sha256 {r.checksum[:16]}  (the same in both)")
    print(f"copied {args.source} into {target.display}")
    return 0
