"""`plansmith-server` / `python -m plansmith_server`; `plansmith-server status` for the report;
`plansmith-server migrate --from FILE --to URL` to copy SQLite into PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from plansmith_server import backends, logs, loops
from plansmith_server import config as config_mod
from plansmith_server.app import serve
from plansmith_server.telemetry import exporters


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["status"]:
        from plansmith_server import status_cli

        return status_cli.main(args[1:])
    if args[:1] == ["migrate"]:
        from plansmith_server import migrate_cli

        return migrate_cli.main(args[1:])
    cfg = config_mod.load(args)
    logs.configure(cfg.log_level, cfg.log_format)
    try:
        # Read before serving: a wrong routing file is a start-up error naming its line.
        routing = backends.load()
    except backends.RoutingConfigError as exc:
        print(f"plansmith-server: routing: {exc}", file=sys.stderr)
        return 2
    try:
        loops.run(serve(cfg, routing=routing), cfg.event_loop)
    except (OSError, exporters.TelemetrySetupError, loops.LoopUnavailable) as exc:
        print(f"plansmith-server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
