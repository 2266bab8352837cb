"""The guide-style example and the code in docs/client.md run as written, against a
real server (the subprocess talks to the in-process server of the test)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("doc", [DOC, ROOT / "README.md"], ids=lambda p: p.name)
async def test_docs_code_blocks_run(fault_server, tmp_path, doc):
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
