"""`plansmith-server` / `python -m plansmith_server`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from plansmith_server import config as config_mod
from plansmith_server import logs
from plansmith_server.app import serve


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config_mod.load(argv)
    logs.configure(cfg.log_level, cfg.log_format)
    try:
        asyncio.run(serve(cfg))
    except OSError as exc:
        print(f"plansmith-server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
