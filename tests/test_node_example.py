"""The Node example (examples/node) against a real server: grpc-js with the repository's
protos, a Struct built as a Struct, enum names, error details decoded with the google/rpc
protos of the googleapis-common-protos package, request ids that make a rerun write
nothing. Its packages come from the npm registry, pinned by package-lock.json."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import google.rpc.status_pb2
import pytest

from plansmith import PlansmithClient
from tests.test_process import launch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "node"
# googleapis-common-protos installs the .proto files next to the generated modules.
GOOGLE_PROTOS = Path(google.rpc.status_pb2.__file__).parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node and npm"
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        out = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    return EXAMPLE / "node_modules"


def _node(address: str, run_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "example.js", address, run_id],
        cwd=EXAMPLE,
        env={"PATH": os.environ["PATH"], "GOOGLE_PROTOS_DIR": str(GOOGLE_PROTOS)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_node_example_runs_against_a_real_server(node_modules, tmp_path):
    assert (GOOGLE_PROTOS / "google" / "rpc" / "error_details.proto").is_file()
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        first = _node(sp.address, "t1")
        again = _node(sp.address, "t1")
        with PlansmithClient.connect(sp.address) as client:
            stored = client.get_plans()
            tasks = client.get_tasks(stored.plans[0].id, per_page=1).total_size
    finally:
        sp.stop()
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    out = first.stdout
    # The Struct arrived: the planner saw both context keys.
    assert "context used: backup_required,environment" in out
    assert re.search(r"^plan pln_\w+ Node example: PLAN_STATUS_DRAFT$", out, re.M), out
    assert re.search(r"^task .+: TASK_STATUS_TODO TASK_PRIORITY_\w+$", out, re.M), out
    created = int(re.search(r"created (\d+) tasks", out).group(1))
    assert created > 5
    assert "error NOT_FOUND: plan 'pln_missing' not found" in out
    assert "  reason PLAN_NOT_FOUND" in out
    assert "  resource plansmith.dev/plan pln_missing" in out
    # The rerun answered from the idempotency keys: one plan, its tasks once.
    assert stored.total_size == 1 and tasks == created
    assert first.stdout.splitlines()[0] == again.stdout.splitlines()[0]
