"""The README's command-line session runs as written, twice, writing once."""

from __future__ import annotations

from plansmith import PlansmithClient
from tests.test_readme import readme_block, run_block


def test_readme_cli_session(server_proc, tmp_path, monkeypatch):
    svg = tmp_path / "gantt.svg"
    block = readme_block("cli").replace("docs/gantt-example.svg", str(svg))
    monkeypatch.setattr("tests.test_readme.readme_block", lambda name: block)
    first = run_block("cli", server_proc.address)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Applied to the plan" in first.stdout and "◆" in first.stdout
    assert svg.read_text().startswith("<?xml")
    with PlansmithClient.connect(server_proc.address) as client:
        shops = [p for p in client.iter_plans() if p.name == "Shop"]
        again = run_block("cli", server_proc.address)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [p.id for p in client.iter_plans() if p.name == "Shop"] == [s.id for s in shops]
    assert len(shops) == 1
