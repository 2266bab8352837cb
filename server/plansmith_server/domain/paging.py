"""Pages of list calls (AIP-158): opaque tokens bound to the call's filters."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from plansmith_server.domain.models import ListFilter, Page
from plansmith_server.errors import PageTokenError


def page_of(rows: Sequence[tuple[int, Any]], size: int, total: int, filt: ListFilter) -> Page:
    """The page of the first `size` of `rows` ((position, item) pairs, one more than
    `size` if there is a next page) with `total` items in all."""
    items = rows[:size]
    token = encode_page_token(items[-1][0], filt) if len(rows) > size else ""
    return Page(tuple(item for _, item in items), token, total)


MAX_PAGE_TOKEN = 1_024
"""Characters; the tokens this service writes have about 50 (a position and a hash)."""


def encode_page_token(after_seq: int, filt: ListFilter) -> str:
    raw = json.dumps({"a": after_seq, "f": filt.key()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, filt: ListFilter) -> int:
    """The position a token continues from; 0 for no token."""
    if not token:
        return 0
    # Tokens are opaque to callers but not tamper-proof: whatever one holds is checked
    # before use (a position past SQLite's 64-bit integers, JSON nested deep enough to
    # exhaust the parser's recursion, a token far longer than any this service writes).
    try:
        if len(token) > MAX_PAGE_TOKEN:
            raise ValueError(len(token))
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, key = data["a"], data["f"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
            raise ValueError(after)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise PageTokenError("not a page token issued by this service") from None
    if key != filt.key():
        raise PageTokenError("the filters changed since this token was issued; start again")
    return after
