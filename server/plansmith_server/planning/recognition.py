"""Which domain a brief belongs to -- or that it belongs to none the library knows.

Every compound task of the library is scored against the brief with the lexical model
of :mod:`.ranking` (IDF-weighted share of the brief's words that the compound's title,
keywords and descriptions contain), then gated by the compound's own terms:

* **evidence** -- a compound that declares evidence terms is not a candidate unless
  one of them occurs ("database" alone does not make a warehouse a database migration);
* **negative** terms -- each one present multiplies the score by ``NEGATIVE_FACTOR``
  ("campaign" + "email" pulls a website down).

The domain score is the better of the score on the name + description and a discounted
score on the whole brief (name, description, requirements), so a short description
backed by specific requirements is still recognized. A brief is recognized when its
best compound reaches ``DOMAIN_THRESHOLD``; otherwise the planner says so
(``DOMAIN_NOT_RECOGNIZED``, naming the closest compounds) and plans from the brief's
own words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .library import IndexedTokens, MethodLibrary
from .text import tokenize

__all__ = [
    "DOMAIN_THRESHOLD",
    "NEGATIVE_FACTOR",
    "REQUIREMENTS_ONLY_FACTOR",
    "WEAK_EVIDENCE_THRESHOLD",
    "WHOLE_BRIEF_WEIGHT",
    "DomainMatch",
    "Recognition",
    "rank_compounds",
    "recognize_domain",
]

DOMAIN_THRESHOLD = 0.4
"""Minimum domain score for a brief to be planned as that compound."""
NEGATIVE_FACTOR = 0.4
"""Score multiplier per negative term of a compound found in the text."""
WHOLE_BRIEF_WEIGHT = 0.8
"""Weight of the whole-brief score against the name + description score."""
WEAK_EVIDENCE_THRESHOLD = 0.75
"""Minimum score of a compound whose only evidence is among its `weak_evidence` terms,
in fewer than `WEAK_CORROBORATION` distinct words: words that also mean something
elsewhere ("drip" irrigation, "deploying" bat detectors, a theatre's "production" and
"press release") are enough only with a strong lexical match. Several of them together
("deploy version 2.0 ... release ... to production") corroborate each other."""
WEAK_CORROBORATION = 3
REQUIREMENTS_ONLY_FACTOR = 0.5
"""Score multiplier of a compound whose evidence occurs only in the requirements: the
name and description say what the work *is*; a requirement naming a tool or a neighbour
("tokens issued by our Keycloak", "experience with Zendesk") says what it *touches*."""


@dataclass(frozen=True)
class DomainMatch:
    """One compound's standing for a brief.

    Attributes:
        compound: Compound task name.
        score: Gated score in [0, 1] (0 when its evidence is missing).
        lexical: Score before the evidence and negative gates.
        evidence: Evidence terms found.
        negatives: Negative terms found.
        strength: The gated score before the cap at 1 -- how much more than enough
            evidence the brief holds for this compound. Compounds whose scores tie
            (two domains both fully matched) are ordered by the number of evidence
            terms found, then by this, so a tie is decided by the brief's words,
            never silently by the compounds' names.
    """

    compound: str
    score: float
    lexical: float
    evidence: tuple[str, ...]
    negatives: tuple[str, ...]
    strength: float = 0.0


@dataclass(frozen=True)
class Recognition:
    """The outcome of domain recognition.

    Attributes:
        best: The recognized compound, or None.
        ranked: Compounds with a non-zero lexical score, best gated score first.
        threshold: The threshold applied.
    """

    best: DomainMatch | None
    ranked: tuple[DomainMatch, ...]
    threshold: float

    @property
    def runner_up(self) -> DomainMatch | None:
        """The best compound after the recognized one (or the best when none is)."""
        rest = [m for m in self.ranked if self.best is None or m.compound != self.best.compound]
        return rest[0] if rest else None

    def closest(self, n: int = 3) -> tuple[DomainMatch, ...]:
        """The `n` closest compounds with a non-zero lexical score."""
        return self.ranked[:n]


def _match(
    library: MethodLibrary,
    name: str,
    tokens: Sequence[str],
    gate_tokens: Sequence[str],
    lexical: float | None = None,
) -> DomainMatch:
    compound = library.compounds[name]
    if lexical is None:
        lexical = library.compound_index.score(tokens, name)
    evidence = compound.evidence_found(gate_tokens)
    negatives = compound.negatives_found(gate_tokens)
    score = lexical * (NEGATIVE_FACTOR ** len(negatives)) if evidence else 0.0
    return DomainMatch(name, score, lexical, evidence, negatives)


def rank_compounds(
    library: MethodLibrary,
    tokens: Sequence[str],
    *,
    gate_tokens: Iterable[str] | None = None,
    minimum: float = 1e-9,
    keys: Iterable[str] | None = None,
) -> list[tuple[str, float]]:
    """Compounds by gated score, best first (ties by uncapped strength, then name).

    Args:
        library: The method library.
        tokens: Query tokens (scored).
        gate_tokens: Tokens the evidence/negative terms are looked up in (default:
            `tokens`).
        minimum: Drop compounds scoring below this.
        keys: Restrict to these compounds.
    """
    gate = IndexedTokens(tokens if gate_tokens is None else gate_tokens)
    strengths = library.compound_index.strengths(tokens)
    names = strengths if keys is None else [k for k in keys if k in strengths]
    out = []
    for name in names:
        lexical = min(1.0, strengths[name])
        if lexical < minimum:
            continue  # the gates only lower a score
        m = _match(library, name, tokens, gate, lexical)
        if m.score >= minimum:
            out.append((name, m.score, strengths[name] * m.score / lexical))
    out.sort(key=lambda item: (-item[1], -item[2], item[0]))
    return [(name, score) for name, score, _ in out]


def recognize_domain(
    library: MethodLibrary,
    head: Sequence[str],
    whole: Sequence[str],
    threshold: float = DOMAIN_THRESHOLD,
) -> Recognition:
    """Recognize the brief's domain.

    Args:
        library: The method library.
        head: Tokens of the name and description.
        whole: Tokens of the name, description and requirements.
        threshold: Minimum gated score.
    """
    gate = IndexedTokens(whole)
    head_gate = IndexedTokens(head)
    index = library.compound_index
    head_strengths = index.strengths(head)
    whole_strengths = index.strengths(whole)
    matches = []
    for name in sorted(set(head_strengths) | set(whole_strengths)):
        head_raw = head_strengths.get(name, 0.0)
        whole_raw = whole_strengths.get(name, 0.0)
        on_head = _match(library, name, head, gate, min(1.0, head_raw))
        on_whole = _match(library, name, whole, gate, min(1.0, whole_raw))
        score = max(on_head.score, WHOLE_BRIEF_WEIGHT * on_whole.score)
        lexical = max(on_head.lexical, WHOLE_BRIEF_WEIGHT * on_whole.lexical)
        # The gate factor (0 without evidence, NEGATIVE_FACTOR per negative) applies
        # to the uncapped strength as it does to the score.
        factor = on_whole.score / on_whole.lexical if on_whole.lexical else 0.0
        if on_whole.evidence and not library.compounds[name].evidence_found(head_gate):
            score *= REQUIREMENTS_ONLY_FACTOR
            factor *= REQUIREMENTS_ONLY_FACTOR
        strength = factor * max(head_raw, WHOLE_BRIEF_WEIGHT * whole_raw)
        matches.append(
            DomainMatch(
                name,
                round(score, 4),
                round(lexical, 4),
                on_whole.evidence,
                on_whole.negatives,
                round(strength, 4),
            )
        )
    matches.sort(key=lambda m: (-m.score, -_tie_evidence(m), -m.strength, -m.lexical, m.compound))
    best = next((m for m in matches if m.score >= _needed(library, m, threshold)), None)
    return Recognition(best, tuple(matches), threshold)


def _needed(library: MethodLibrary, match: DomainMatch, threshold: float) -> float:
    """The score `match` needs: `threshold`, or `WEAK_EVIDENCE_THRESHOLD` when all of its
    evidence is among its compound's weak terms."""
    weak = library.compounds[match.compound].weak_evidence
    if not match.evidence or not all(term in weak for term in match.evidence):
        return threshold
    words = {w for term in match.evidence for w in tokenize(term)}
    if len(words) >= WEAK_CORROBORATION:
        return threshold
    return max(threshold, WEAK_EVIDENCE_THRESHOLD)


def _tie_evidence(match: DomainMatch) -> int:
    """Between compounds that both reach the cap, the one more of whose evidence terms
    the brief holds comes first: "the mobile and web apps show error 503" after "a config
    push ... nobody can log in" names a web app once and an outage several ways."""
    return len(match.evidence) if match.score >= 1.0 else 0
