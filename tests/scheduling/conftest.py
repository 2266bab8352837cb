"""Fixtures for the scheduling domain tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The workplace keeps shared data beside the repository (CI clones it there too);
# PLANSMITH_PSPLIB_DIR points elsewhere when the checkout lives somewhere else.
PSPLIB_DIR = Path(
    os.environ.get(
        "PLANSMITH_PSPLIB_DIR", Path(__file__).resolve().parents[3] / "shared" / "psplib"
    )
)


@pytest.fixture
def psplib_dir() -> Path:
    """The shared PSPLIB folder (part of the workplace, beside the repo)."""
    assert PSPLIB_DIR.is_dir(), (
        f"PSPLIB data missing at {PSPLIB_DIR}: check out the repository beside shared/, "
        "or set PLANSMITH_PSPLIB_DIR"
    )
    return PSPLIB_DIR
