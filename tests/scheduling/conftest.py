"""Fixtures for the scheduling domain tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The instances the tests solve ship with them (tests/data/psplib, a subset of the
# workplace's ../shared/psplib); PLANSMITH_PSPLIB_DIR points at another copy of the sets.
PSPLIB_DIR = Path(
    os.environ.get("PLANSMITH_PSPLIB_DIR", Path(__file__).resolve().parents[1] / "data" / "psplib")
)


@pytest.fixture
def psplib_dir() -> Path:
    """The PSPLIB folder: `j30/*.sm` and `reference.csv`."""
    assert PSPLIB_DIR.is_dir(), f"PSPLIB data missing at {PSPLIB_DIR}"
    return PSPLIB_DIR
