"""Text normalization shared by every matcher of the planning domain.

A deliberately small, deterministic pipeline: lower-case, rewrite multi-word phrases and
spelling variants to one token ("CI/CD" -> ``cicd``, "k8s" -> ``kubernetes``), split on
non-alphanumerics, drop stop words, expand a few synonyms and strip common English
suffixes ("stemming-lite"). Queries and library documents go through the same pipeline,
so "migrating", "migration" and "migrated" all meet at ``migrat``.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "STOPWORDS",
    "canonical_tokens",
    "content_words",
    "normalize_phrases",
    "stem",
    "tokenize",
]

STOPWORDS: frozenset[str] = frozenset(
    """
    a an the and or of to for in on at by with from into via as is are be been being it its
    this that these those we our us you your they their them i me my will shall should must
    can could would may might need needs want wants have has had do does done so such any all
    each every some more most very also just than then there here about over under up down
    out only own same both few other which who whom what when where while how why if else
    per etc e g ie eg using use used make sure able get let s t within into across
    every project
    """.split()
)

# Phrase rewrites run on the lower-cased text before tokenizing, so that spelling
# variants of one concept become one token (order matters: longer patterns first).
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\bci\s*/\s*cd\b|\bci[\s-]cd\b|\bcicd\b", " cicd "),
        (r"\bk8s\b", " kubernetes "),
        (r"\bfront[\s-]end\b", " frontend "),
        (r"\bback[\s-]end\b", " backend "),
        (r"\bweb[\s-]?sites?\b", " website "),
        (r"\bweb[\s-]?app(lication)?s?\b", " webapp "),
        (r"\bauto[\s-]?scal(e|es|ing|er|ers)\b", " autoscaling "),
        (r"\bon[\s-]?board(ing)?\b", " onboarding "),
        (r"\b(zero|no|without)[\s-]+(any[\s-]+)?down[\s-]?time\b", " zerodowntime "),
        (r"\bblue[\s/-]?green\b", " bluegreen "),
        (r"\bpost[\s-]?mortems?\b", " postmortem "),
        (r"\bmicro[\s-]?services?\b", " microservice "),
        (r"\bpostgres(ql)?\b|\bpsql\b", " postgresql "),
        (r"\bnode\.?js\b", " nodejs "),
        (r"\breact\.?js\b", " react "),
        (r"\bnext\.?js\b", " nextjs "),
        (r"\bvue\.?js\b", " vue "),
        (r"\be[\s-]?commerce\b", " ecommerce "),
        (r"\bpen(etration)?[\s-]?test(s|ing)?\b", " pentest "),
        (r"\bsign[\s-]?up\b", " signup "),
        (r"\blog[\s-]?in\b", " login "),
        (r"\bon[\s-]?call\b", " oncall "),
        (r"\broll[\s-]?back\b", " rollback "),
        (r"\broll[\s-]?out\b", " rollout "),
        (r"\bcode[\s-]?base\b", " codebase "),
        (r"\bdev[\s-]?ops\b", " devops "),
        (r"\bsite reliability\b", " sre "),
        (r"\bgit[\s-]?ops\b", " gitops "),
        (r"\bu[xi]\s*/\s*u[xi]\b", " ui ux "),
        (r"\bi/o\b", " io "),
    )
)

# Token synonyms: a raw token expands to one or more canonical tokens (stemmed later).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "db": ("database",),
    "dbs": ("database",),
    "site": ("website",),
    "k8": ("kubernetes",),
    "eks": ("kubernetes", "cloud"),
    "gke": ("kubernetes", "cloud"),
    "aks": ("kubernetes", "cloud"),
    "infra": ("infrastructure",),
    "iac": ("infrastructure", "terraform"),
    "terraform": ("terraform", "infrastructure"),
    "repo": ("repository",),
    "auth": ("authentication",),
    "login": ("login", "authentication"),
    "signup": ("signup", "authentication"),
    "sso": ("sso", "authentication"),
    "oauth": ("oauth", "authentication"),
    "outage": ("outage", "incident"),
    "sev1": ("incident",),
    "sev2": ("incident",),
    "breach": ("breach", "incident", "security"),
    "observability": ("observability", "monitoring"),
    "prometheus": ("prometheus", "monitoring", "metric"),
    "grafana": ("grafana", "dashboard", "monitoring"),
    "pagerduty": ("pagerduty", "alert"),
    "opsgenie": ("opsgenie", "alert"),
    "upgrade": ("upgrade", "migration"),
    "upgrading": ("upgrade", "migration"),
    "ship": ("launch", "release"),
    "launch": ("launch", "release"),
    "rollout": ("rollout", "deploy"),
    "newcomer": ("onboarding",),
    "vulnerability": ("vulnerability", "security"),
    "vulnerabilities": ("vulnerability", "security"),
    "owasp": ("owasp", "security"),
    "pentest": ("pentest", "security"),
    "threat": ("threat", "security"),
    "rest": ("rest", "api"),
    "graphql": ("graphql", "api"),
    "endpoint": ("endpoint", "api"),
    "endpoints": ("endpoint", "api"),
    "ux": ("ux", "design"),
    "figma": ("figma", "design"),
    "etl": ("etl", "pipeline", "data"),
    "elt": ("etl", "pipeline", "data"),
    "ingestion": ("ingest",),
    "ios": ("ios", "mobile"),
    "android": ("android", "mobile"),
    "iphone": ("ios", "mobile"),
    "flutter": ("flutter", "mobile"),
    "helm": ("helm", "kubernetes"),
    "argocd": ("argocd", "gitops", "deploy"),
    "mysql": ("mysql", "database"),
    "postgresql": ("postgresql", "database"),
    "mongodb": ("mongodb", "database"),
    "monolithic": ("monolith",),
    "js": ("javascript",),
    "ts": ("typescript",),
    "py": ("python",),
    "sre": ("sre", "reliability"),
    "slo": ("slo", "reliability"),
    "slos": ("slo", "reliability"),
    "sla": ("sla",),
    "logs": ("logging",),
    "log": ("logging",),
}

NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
}
"""Numbers written as words, read by both constraints ("within two weeks") and counts
("three services"); each reader adds the words only it accepts."""

_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Suffix rules tried in order; the first one that leaves a stem of >= 3 letters wins.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ies", "y"),
    ("ied", "y"),
    ("uration", "ure"),
    ("ization", "ize"),
    ("isation", "ize"),
    ("ational", "ate"),
    ("ation", "ate"),
    ("ments", ""),
    ("ment", ""),
    ("ings", ""),
    ("ing", ""),
    ("ness", ""),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
    ("ly", ""),
)
_KEEP_S_ENDINGS = ("ss", "is", "us")
_DOUBLE_OK = frozenset("lsz")


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """Reduce a lower-case word to a crude stem ("migrations" -> "migrat").

    Args:
        word: One lower-case token.

    Returns:
        The stem; words of three letters or fewer and tokens with digits are unchanged.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    result = word
    for suffix, replacement in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s" and word.endswith(_KEEP_S_ENDINGS):
            break
        if suffix == "es" and not word.endswith(("sses", "xes", "ches", "shes", "zes")):
            # "releases" -> "release" (-> "releas" below), like "release" itself.
            candidate = word[:-1]
        else:
            candidate = word[: len(word) - len(suffix)] + replacement
        if len(candidate) < 3:
            break
        result = candidate
        if suffix in ("ing", "ed", "ings") and len(result) > 3:
            # "running" -> "runn" -> "run"; "logging" -> "log".
            if (
                result[-1] == result[-2]
                and result[-1] not in _DOUBLE_OK
                and result[-1] not in "aeiou"
            ):
                result = result[:-1]
        break
    if len(result) > 4 and result.endswith("e"):
        result = result[:-1]
    return result


@lru_cache(maxsize=4096)
def normalize_phrases(text: str) -> str:
    """Lower-case `text` and rewrite known multi-word phrases to single tokens."""
    lowered = text.lower()
    for pattern, replacement in _PHRASES:
        lowered = pattern.sub(replacement, lowered)
    return lowered


@lru_cache(maxsize=8192)
def tokenize(text: str) -> tuple[str, ...]:
    """Normalize `text` into stemmed content tokens, in order, with synonyms expanded.

    Args:
        text: Free text (a requirement, a description, a keyword list...).

    Returns:
        The tokens; stop words are removed, duplicates are kept (term frequency matters).
    """
    tokens: list[str] = []
    for raw in _TOKEN_RE.findall(normalize_phrases(text)):
        if raw in STOPWORDS:
            continue
        for expanded in _SYNONYMS.get(raw, (raw,)):
            tokens.append(stem(expanded))
    return tuple(tokens)


@lru_cache(maxsize=4096)
def canonical_tokens(text: str) -> tuple[str, ...]:
    """Like :func:`tokenize`, but each word gives only its canonical token ("db" ->
    ``database``, "etl" -> ``etl``): for library terms that must occur as written,
    without the broader words a synonym adds ("etl" also means "data")."""
    tokens: list[str] = []
    for raw in _TOKEN_RE.findall(normalize_phrases(text)):
        if raw in STOPWORDS:
            continue
        tokens.append(stem(_SYNONYMS.get(raw, (raw,))[0]))
    return tuple(tokens)


def content_words(text: str) -> tuple[str, ...]:
    """Distinct content tokens of `text` in first-seen order (no synonym duplicates)."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        seen.setdefault(token, None)
    return tuple(seen)
