"""Python client for the Plansmith planning service.

`plansmith.v1` holds the code generated from `protos/plansmith/v1` (messages and stubs).
"""

from __future__ import annotations

__version__ = "0.1.0"
