"""The guide-style example and the code in docs/client.md run as written, against a
real server (the subprocess talks to the in-process server of the test)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from plansmith import AsyncPlansmithClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "clients" / "python" / "examples" / "quickstart.py"
DOC = ROOT / "docs" / "client.md"


async def _run(*args: str, limit: float = 45) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), limit)
    return proc.returncode or 0, out.decode()


async def test_quickstart_example(fault_server):
    code, out = await _run(str(EXAMPLE), fault_server.address)
    assert code == 0, out
    for expected in (
        "not found: task 'tsk_does_not_exist' (request id quickstart-lookup)",
        "invalid: task.title",
        "stale etag: re-read and retried",
        "idempotency key reused: IDEMPOTENCY_KEY_REUSED",
        "refused: TASK_HAS_DEPENDENTS",
        "deadline exceeded: DEADLINE_EXCEEDED",
        "gave up at the deadline: ServiceUnavailableError",
        "unavailable: UNAVAILABLE",
        "circuit open",
        "all, two per page: ['Design the checkout', 'Payment API', 'Checkout UI',",
        "done",
    ):
        assert expected in out, out


async def _counts(address: str) -> tuple[int, int]:
    """Plans, and tasks over all plans."""
    async with AsyncPlansmithClient.connect(address) as client:
        plans = [p async for p in client.iter_plans()]
        tasks = [(await client.get_tasks(p.id, per_page=1)).total_size for p in plans]
    return len(plans), sum(tasks)


@pytest.mark.parametrize("doc", [DOC, ROOT / "README.md"], ids=lambda p: p.name)
async def test_docs_code_blocks_run(fault_server, tmp_path, doc):
    # Twice: every write in the docs carries a request_id, so the second run writes
    # nothing (the guide's habit of a request_id in `context` would store it all again).
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks
    script = tmp_path / "doc_blocks.py"
    script.write_text(
        "import sys\n"
        "for i, code in enumerate(sys.argv[2:]):\n"
        "    code = code.replace('localhost:50051', sys.argv[1])\n"
        "    name = f'doc block {i + 1}'\n"
        "    exec(compile(code, name, 'exec'), {'__name__': '__main__'})\n"
    )
    code, out = await _run(str(script), fault_server.address, *blocks)
    assert code == 0, out
    first = await _counts(fault_server.address)
    code, again = await _run(str(script), fault_server.address, *blocks)
    assert code == 0, again
    assert await _counts(fault_server.address) == first
    if doc == DOC:
        # Enum names, not numbers.
        for line in ("Design IN_PROGRESS HIGH", "Build TODO MEDIUM", "Plan status: ACTIVE"):
            assert line in out, out
        # The guide's complete example: every generated task created, with its skills.
        created = re.findall(r"Created task '.*' \((\w+), \[.*\]\): tsk_\w+-t\d+", out)
        generated = int(re.search(r"Generated plan with (\d+) tasks", out).group(1))
        assert len(created) == generated > 5, out
        assert "Tasks already created (a rerun)" in again
        assert "Validation error" not in out + again
