"""Sizing a work package that no library method covers, from its own words.

When the library has nothing for a requirement (or for a whole brief), the planner
makes one work package of it instead of a design/build/verify chain of a fixed size.
Its estimate follows what the words say:

* the kind of work: building, migrating, integrating or automating something is
  larger (12 h most likely) than writing, booking, sending or reviewing (4 h); other
  work is 6 h;
* the number of separate pieces it lists ("a venue, a caterer and a band" is three);
* the largest count it names ("200 guests", "12 cron jobs"): ``1 + 0.3 log2(n)``,
  at most 4x.

The range is wide (optimistic 0.5x, pessimistic 2.5x the most likely): these are the
plan's least certain estimates, and the confidence says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .library import ThreePoint
from .slots import find_counts
from .text import tokenize

__all__ = ["WorkSizing", "headline", "parts", "size_work_package"]

_LARGE = frozenset(
    tokenize(
        "build implement develop migrate migration integrate integration redesign rewrite "
        "automate platform replatform refactor overhaul launch rollout roll"
    )
)
_SMALL = frozenset(
    tokenize(
        "write send book review update schedule announce notify order buy document draft "
        "email call invite confirm collect approve sign rename check"
    )
)
_PIECES = re.compile(r",|;|\band\b|\bplus\b|&|\bas well as\b")


@dataclass(frozen=True)
class WorkSizing:
    """A work package's estimate and how it was reached."""

    estimate: ThreePoint
    basis: str


def size_work_package(text: str) -> WorkSizing:
    """Estimate one work package from its text."""
    tokens = tokenize(text)
    first = tokens[:2]
    if any(t in _LARGE for t in tokens):
        base, kind = 12.0, "building/migrating work"
    elif any(t in _SMALL for t in first):
        base, kind = 4.0, "a bounded errand"
    else:
        base, kind = 6.0, "general work"
    pieces = [p for p in _PIECES.split(text.lower()) if tokenize(p)]
    n_pieces = max(1, min(len(pieces), 5))
    piece_factor = 1.0 + 0.6 * (n_pieces - 1)
    counts = find_counts(text, 0)
    biggest = max(counts, key=lambda c: c.number, default=None)
    count_factor = min(4.0, 1.0 + 0.3 * math.log2(biggest.number)) if biggest else 1.0
    most_likely = round(base * piece_factor * count_factor * 2) / 2
    parts = [f"{kind} ({base:g} h)"]
    if n_pieces > 1:
        parts.append(f"{n_pieces} pieces (x{piece_factor:.1f})")
    if biggest:
        parts.append(f"'{biggest.phrase}' (x{count_factor:.2f})")
    return WorkSizing(
        ThreePoint(most_likely * 0.5, most_likely, most_likely * 2.5), ", ".join(parts)
    )


# Words that start a qualifier of a requirement's main clause: "Shift calendar per
# warehouse | with a cap of volunteers per shift", "Scan a QR code | at the till to
# collect a stamp".
_QUALIFIER = re.compile(
    r"\s(?:with|without|for|by|so|when|whenever|if|after|before|until|against|instead|while|"
    r"because|via|using|through|on|at|within|during|unless|once|whose|which|that)\s",
    re.IGNORECASE,
)


def headline(text: str, limit: int = 90) -> str:
    """A work package's title: the requirement's main clause, without the qualifiers
    that follow it (they stay in the description), capitalized -- "Shift calendar per
    warehouse" for "Shift calendar per warehouse with a cap of volunteers per shift".
    A clause of fewer than two words is not a title: the cut moves to the next
    qualifier, or the whole text stays."""
    clean = " ".join(text.split()).rstrip(".")
    for m in _QUALIFIER.finditer(clean):
        head = clean[: m.start()].rstrip(" ,;:-")
        if len(tokenize(head)) >= 2 and len(head.split()) >= 2:
            clean = head
            break
    if len(clean) > limit:
        clean = clean[:limit].rsplit(" ", 1)[0] + "..."
    return clean[:1].upper() + clean[1:]


_PART_QUALIFIER = re.compile(r"\s(?:with|without|including|for)\s", re.IGNORECASE)
_PART_LIST = re.compile(r",(?!\d{3})|;|\band\b|\bplus\b|&|\bas well as\b")
_LEADING = re.compile(
    r"^(?:(?:the|a|an|our|their|its|all|each|every|also|then)\s+)+", re.IGNORECASE
)


def parts(text: str) -> list[str]:
    """The separate things a requirement asks for, in its words: split at its lists
    ("a, b and c") and at the qualifiers of its main clause ("with", "for", "by"...).
    "Photo capture and customer signature" -> ["photo capture", "customer signature"];
    "API keys per partner with usage limits" -> ["API keys per partner", "usage
    limits"]. Pieces without a content word are dropped; one piece means the
    requirement is one thing."""
    clean = " ".join(text.split()).rstrip(".")
    if clean[:1].isupper() and clean[1:2].islower():
        clean = clean[:1].lower() + clean[1:]  # the sentence's capital, not a name's
    out: list[str] = []
    for chunk in _PART_QUALIFIER.split(clean):
        for piece in _PART_LIST.split(chunk):
            piece = _LEADING.sub("", piece.strip(" ,;:-"))
            if tokenize(piece) and len(piece) > 2:
                out.append(piece)
    return list(dict.fromkeys(out))
