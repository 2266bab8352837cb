"""The `plansmith` command line (`pip install 'plansmith[cli]'`).

Importing this package costs nothing: the command modules (Typer, Rich) load in `main`,
and `plansmith.cli.status` (the status report, shared with `plansmith-server status`)
needs only protobuf.
"""

from __future__ import annotations


def main() -> None:
    """The `plansmith` console script."""
    from plansmith.cli.app import run

    run()
