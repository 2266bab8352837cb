#!/usr/bin/env python3
"""Generates the sync client from the async one: clients/python/src/plansmith/client.py
(`AsyncPlansmithClient`) -> sync_client.py (`PlansmithClient`), so the twins cannot drift.

    scripts/unasync.py          rewrite sync_client.py
    scripts/unasync.py --check  exit 1 (with a diff) when sync_client.py is not what the
                                script makes of client.py (`make lint` runs it)

A small rule-based rewrite, as httpcore's unasync: first the exact phrases below (each must
occur, so a rule that stops matching fails loudly instead of passing text through), then
the token rules (`async def` -> `def`, `await x` -> `x`, the async names -> the sync ones),
then `ruff format`. What the clients do differently beyond that lives in modules with an
async and a sync variant (`_channels`, `pagers`, `streams`, the interceptors), named so
that a token rule maps one to the other.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clients" / "python" / "src" / "plansmith"
SOURCE = PACKAGE / "client.py"
TARGET = PACKAGE / "sync_client.py"

HEADER = (
    "# Generated from client.py by scripts/unasync.py: do not edit. Edit client.py and\n"
    "# run scripts/unasync.py (make lint fails when this file differs from its output).\n"
)

# Exact text of client.py -> what the sync client says instead.
PHRASES: list[tuple[str, str]] = [
    (
        '"""`AsyncPlansmithClient`: the grpc.aio client.\n',
        '"""`PlansmithClient`: the sync client (grpc\'s sync channel and interceptors).\n',
    ),
    (
        "`sync_client.py` is generated from this file by `scripts/unasync.py` (`make lint`"
        " checks\nit): edit this one and run the script.\n",
        "Generated from `client.py` by `scripts/unasync.py`: the methods, arguments, results\n"
        "and errors of the async client.\n",
    ),
    (
        "# `timeout=` is the gRPC deadline of the call (the server sees it too), not a local"
        " wait.\n# ruff: noqa: ASYNC109\n\n",
        "",
    ),
    (
        "Async client of the Plansmith service (on one event loop).",
        "Sync client of the Plansmith service (safe to share between threads).",
    ),
    ('"""The channel (grpc.aio)."""', '"""The channel (sync grpc)."""'),
    ("your own interceptors (grpc.aio's)", "your own interceptors (sync grpc's)"),
]

# Token rules, in order, on whole words.
TOKENS: list[tuple[str, str]] = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\bAsyncPlansmithClient\b", "PlansmithClient"),
    (r"\bAsyncPager\b", "Pager"),
    (r"\bAsyncResumableStream\b", "ResumableStream"),
    (r"\bopen_aio_channel\b", "open_sync_channel"),
    (r"\bgrpc\.aio\.Channel\b", "grpc.Channel"),
    (r"\bgrpc\.aio\.UnaryUnaryMultiCallable\b", "grpc.UnaryUnaryMultiCallable"),
    (r"\bchain\.aio\(\)", "chain.sync()"),
]


def unasync(text: str) -> str:
    for old, new in PHRASES:
        if old not in text:
            raise SystemExit(f"unasync: client.py no longer contains {old!r}: update PHRASES")
        text = text.replace(old, new)
    for pattern, new in TOKENS:
        text = re.sub(pattern, new, text)
    return HEADER + text


def ruff_format(text: str) -> str:
    here = Path(sys.executable).parent / "ruff"
    ruff = str(here) if here.exists() else shutil.which("ruff")
    if ruff is None:
        raise SystemExit("unasync: ruff not found (make install puts it in .venv/bin)")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(TARGET), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"unasync: ruff format failed:\n{done.stderr}")
    return done.stdout


def generated() -> str:
    return ruff_format(unasync(SOURCE.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if sync_client.py is stale")
    args = parser.parse_args()
    want = generated()
    if not args.check:
        TARGET.write_text(want)
        print(f"generated {TARGET.relative_to(ROOT)} from {SOURCE.relative_to(ROOT)}")
        return 0
    have = TARGET.read_text()
    if have == want:
        print("sync_client.py matches client.py")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            have.splitlines(keepends=True),
            want.splitlines(keepends=True),
            "sync_client.py (committed)",
            "sync_client.py (generated from client.py)",
        )
    )
    print("sync_client.py is stale or edited by hand: run scripts/unasync.py", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
