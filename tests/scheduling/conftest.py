"""Fixtures for the scheduling domain tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PSPLIB_DIR = Path(__file__).resolve().parents[3] / "shared" / "psplib"


@pytest.fixture
def psplib_dir() -> Path:
    """The shared PSPLIB folder (part of the workplace, beside the repo)."""
    assert PSPLIB_DIR.is_dir(), f"PSPLIB data missing at {PSPLIB_DIR}"
    return PSPLIB_DIR
