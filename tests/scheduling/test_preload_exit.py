"""A process that ends while OR-Tools is still being preloaded exits cleanly."""

from __future__ import annotations

import subprocess
import sys


def test_exit_during_preload_prints_no_traceback() -> None:
    code = "from plansmith_server.scheduling.factory import preload_solver\npreload_solver()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr, done.stderr
