"""Sentinels: `DEFAULT` ("use the client's setting") and `UNSET` ("leave this field alone").

`None` keeps its own meaning where it has one (`timeout=None`: no deadline; `retry=None`:
no retries), which is why "not given" needs a value of its own.
"""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


DEFAULT: Final = _Default.DEFAULT
"""Use the client's default for this setting."""
UNSET: Final = _Unset.UNSET
"""Leave this field out of the update."""

DefaultType: TypeAlias = Literal[_Default.DEFAULT]
UnsetType: TypeAlias = Literal[_Unset.UNSET]
