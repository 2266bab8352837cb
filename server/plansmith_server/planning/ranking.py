"""A tiny, deterministic text-relevance model over library entries.

Each document is a bag of stemmed tokens in two fields: *strong* (title, keywords)
and *weak* (descriptions). A query's score against a document is the IDF-weighted share
of the query's informative tokens the document contains -- strong-field hits count in
full, weak-field hits count ``WEAK_FIELD_WEIGHT``:

    score(q, d) = sum_{t in q} idf(t) * hit(t, d) / min(sum_{t in q} idf(t), SATURATION)

Dividing by a saturated total keeps short queries (a requirement) in "fraction of the
query matched" terms, while long queries (a paragraph of description) are judged on the
absolute amount of evidence instead of being diluted by their generic words. Scores lie
in [0, 1] so thresholds are readable. Ties are broken by document key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SATURATION", "WEAK_FIELD_WEIGHT", "TextIndex"]

WEAK_FIELD_WEIGHT = 0.6
SATURATION = 16.0


@dataclass(frozen=True)
class _Doc:
    strong: frozenset[str]
    weak: frozenset[str]


class TextIndex:
    """IDF-weighted query-coverage ranking over a fixed set of documents.

    Args:
        docs: ``key -> (strong tokens, weak tokens)``.
        vocabulary_docs: Extra token sets that only contribute document frequencies
            (so IDF reflects the whole library, not just this index's documents).
    """

    def __init__(
        self,
        docs: Mapping[str, tuple[Iterable[str], Iterable[str]]],
        vocabulary_docs: Sequence[frozenset[str]] = (),
    ) -> None:
        self._docs: dict[str, _Doc] = {}
        for key in sorted(docs):
            strong, weak = docs[key]
            strong_set = frozenset(strong)
            self._docs[key] = _Doc(strong_set, frozenset(weak) - strong_set)
        df: dict[str, int] = {}
        all_sets = [d.strong | d.weak for d in self._docs.values()] + list(vocabulary_docs)
        for token_set in all_sets:
            for token in token_set:
                df[token] = df.get(token, 0) + 1
        self._postings: dict[str, list[tuple[str, bool]]] = {}
        for key, doc in self._docs.items():
            for token in doc.strong:
                self._postings.setdefault(token, []).append((key, True))
            for token in doc.weak:
                self._postings.setdefault(token, []).append((key, False))
        n = max(len(all_sets), 1)
        self._idf = {t: math.log(1.0 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        # Tokens the library never uses still carry meaning ("acme", "stripe"); give them
        # a middling weight so they dilute a match without dominating it.
        ordered = sorted(self._idf.values())
        self._unknown_idf = ordered[len(ordered) // 2] if ordered else 1.0

    @property
    def keys(self) -> tuple[str, ...]:
        """Document keys, sorted."""
        return tuple(self._docs)

    def idf(self, token: str) -> float:
        """IDF of `token` (the median IDF for tokens the index has never seen)."""
        if token.isdigit():
            # Versions and counts ("PostgreSQL 12 to 15", "5 minutes") say little about
            # which task is meant; they must not dilute a match.
            return 0.2
        return self._idf.get(token, self._unknown_idf)

    def knows(self, token: str) -> bool:
        """Whether any indexed document uses `token`."""
        return token in self._idf

    def score(self, query: Sequence[str], key: str) -> float:
        """Relevance of document `key` to the query tokens, in [0, 1]."""
        distinct = dict.fromkeys(query)
        if not distinct:
            return 0.0
        doc = self._docs[key]
        total = 0.0
        hit = 0.0
        for token in distinct:
            weight = self.idf(token)
            total += weight
            if token in doc.strong:
                hit += weight
            elif token in doc.weak:
                hit += weight * WEAK_FIELD_WEIGHT
        return min(1.0, hit / min(total, SATURATION)) if total > 0 else 0.0

    def overlap(self, query: Sequence[str], key: str) -> float:
        """Absolute evidence: summed IDF of the distinct query tokens found in `key`
        (weak-field hits weighted down). Used to choose between sibling methods, whose
        keyword lists are short and whose queries are long."""
        doc = self._docs[key]
        hit = 0.0
        for token in dict.fromkeys(query):
            if token in doc.strong:
                hit += self.idf(token)
            elif token in doc.weak:
                hit += self.idf(token) * WEAK_FIELD_WEIGHT
        return hit

    def rank(
        self, query: Sequence[str], keys: Iterable[str] | None = None, minimum: float = 1e-9
    ) -> list[tuple[str, float]]:
        """Documents scoring at least `minimum`, best first (ties by key).

        Args:
            query: Query tokens.
            keys: Restrict ranking to these documents (default: all).
            minimum: Drop documents scoring below this.
        """
        scores = self.scores(query)
        candidates = self._docs if keys is None else [k for k in keys if k in self._docs]
        scored = [(k, scores.get(k, 0.0)) for k in candidates]
        scored = [(k, s) for k, s in scored if s >= minimum]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored

    def scores(self, query: Sequence[str]) -> dict[str, float]:
        """:meth:`score` of every document sharing a token with the query (one pass over
        an inverted index; documents absent score 0)."""
        denominator, hits = self._hits(query)
        return {k: min(1.0, h / denominator) for k, h in hits.items()}

    def strengths(self, query: Sequence[str]) -> dict[str, float]:
        """:meth:`scores` before the cap at 1: how much more than enough evidence a
        document has. Two documents that both reach 1.0 are told apart by this rather
        than by their names."""
        denominator, hits = self._hits(query)
        return {k: h / denominator for k, h in hits.items()}

    def _hits(self, query: Sequence[str]) -> tuple[float, dict[str, float]]:
        distinct = dict.fromkeys(query)
        total = sum(self.idf(t) for t in distinct)
        if total <= 0:
            return 1.0, {}
        hits: dict[str, float] = {}
        for token in distinct:
            postings = self._postings.get(token)
            if not postings:
                continue
            weight = self.idf(token)
            for key, strong in postings:
                hits[key] = hits.get(key, 0.0) + (weight if strong else weight * WEAK_FIELD_WEIGHT)
        return min(total, SATURATION), hits
