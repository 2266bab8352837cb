"""PSPLIB parser."""

from __future__ import annotations

from pathlib import Path

from plansmith_server.scheduling import load_sm
from plansmith_server.scheduling.compiled import compile_problem


def test_parse_j30_instance(psplib_dir: Path) -> None:
    p = load_sm(psplib_dir / "j30" / "j301_1.sm")
    assert p.name == "j301_1"
    assert len(p.activities) == 32
    assert [r.capacity for r in p.resources] == [12, 13, 4, 12]
    acts = {a.id: a for a in p.activities}
    assert acts["1"].duration == 0 and acts["32"].duration == 0
    assert set(acts["32"].predecessors) >= {"29", "30", "31"}
    assert "1" in acts["2"].predecessors
    assert p.time_resolution == 1.0
    cp = compile_problem(p)
    assert cp.critical_path_bound() == 38  # cpm_lb in reference.csv
