"""`bench/psplib.py` run from a clone: without the PSPLIB data it says where the data
comes from and how to point at it, instead of a FileNotFoundError's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "psplib.py"


def _run(*args: str, env_dir: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLANSMITH_PSPLIB_DIR"}
    if env_dir is not None:
        env["PLANSMITH_PSPLIB_DIR"] = env_dir
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_documented_command_without_data_says_where_it_comes_from(tmp_path):
    for out in (
        _run("--set", "j30", "--sample", "40", "--time-limit", "1"),
        _run("--set", "j30", "--psplib-dir", str(tmp_path)),
        _run("--set", "j60", env_dir=str(ROOT / "tests" / "data" / "psplib")),
    ):
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        assert "PSPLIB single-mode RCPSP benchmark" in out.stderr
        assert "PLANSMITH_PSPLIB_DIR" in out.stderr and "--psplib-dir" in out.stderr
        assert "reference.csv" in out.stderr


def test_it_runs_on_the_instances_shipped_with_the_tests():
    out = _run(
        "--set",
        "j30",
        "--solver",
        "heuristic",
        "--time-limit",
        "0.2",
        "--max-iterations",
        "50",
        env_dir=str(ROOT / "tests" / "data" / "psplib"),
    )
    assert out.returncode == 0, out.stderr
    assert "| j30 | 4 |" in out.stdout
