"""The brief's specifics as typed slots, and library templates that carry them.

A brief says "Upgrade MySQL 5.7 to 8.0", "Move the 12 nightly cron jobs to Airflow",
"a team of 4". :func:`extract_slots` reads, from the text and the (nested) context:

* **technologies** named in the library's vocabulary (``[technology.<key>]`` entries:
  display name, slot kind, aliases), with the versions written next to them ("5.7 to
  8.0", "from version 12 to 15") and their role in the sentence ("from Postgres" is a
  source, "into BigQuery" a target);
* **counts** with their noun ("12 nightly cron jobs", "200k subscribers", "three
  backend engineers"; durations, percentages and versions are not counts);
* the **team size** ("team of 4", ``context.team_size``).

Library titles, descriptions and acceptance criteria may hold placeholders, rendered
by :meth:`Slots.render`:

* ``{database}`` -- the target technology of kind ``database`` with its version
  ("MySQL 8.0"); ``{database.name}`` ("MySQL"), ``{database.version}`` ("8.0"),
  ``{database.from}`` (the source version, "5.7"), ``{database.source}`` (the source
  technology when the brief names one, e.g. "from MySQL to PostgreSQL");
* ``{count:jobs}`` -- the brief's own phrase for that count ("12 nightly cron jobs");
  several nouns may be listed (``{count:users,employees,people}``), the first found
  wins; ``{count:jobs.n}`` is the bare number;
* ``{locale*}`` -- every technology of a kind the brief names (not the ones it moves
  away from), as a list: "German and Japanese";
* ``{team_size}`` -- the team size as a number;
* ``{subject}`` -- what the brief is about: ``context.service`` (or ``app``, ``product``,
  ``system``) or a phrase such as "the billing database", "the checkout flow";
* ``{people}`` -- the people the brief names as the ones concerned ("Onboard Maria and
  Tom", ``context.new_hires``): "Maria and Tom";
* ``{resources}`` -- the things an API serves, in the brief's words ("Endpoints for
  stock levels, reservations and adjustments", "an API for warehouse inventory",
  ``context.resources``): "stock levels, reservations and adjustments";
* ``{spend}`` / ``{spend_target}`` -- the money the brief starts from and the goal, as
  written ("from 62,000 USD to under 45,000 USD a month", "save $40k/month");
* ``{version}`` -- the release version the brief names ("version 2.8.1", "v5.2",
  ``context.version``), when it is not a technology's version;
* ``{change}`` -- the change the plan makes, from the recognized compound's (or its
  method's) ``change`` template ("the move to MySQL 8.0"), for shared tasks such as the
  staging rehearsal;
* ``{slot|fallback words}`` -- the fallback when the slot is empty (without one, an
  empty slot renders as nothing and the spaces around it collapse).

Everything here is lexical and deterministic: no model, no network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .text import NUMBER_WORDS, STOPWORDS, stem

__all__ = [
    "KIND_AREAS",
    "PLAN_SLOTS",
    "TECH_ATTRIBUTES",
    "CountMention",
    "Placeholder",
    "Slots",
    "TechMention",
    "Technology",
    "context_specifics",
    "count_key",
    "extract_slots",
    "find_counts",
    "index_text",
    "parse_placeholders",
    "release_mentions",
    "specifics_of",
]

TECH_ATTRIBUTES = ("name", "version", "from", "source")
PLAN_SLOTS = ("change", "subject", "version", "people", "resources", "spend", "spend_target")
"""Placeholders about the plan itself rather than a technology."""


@dataclass(frozen=True)
class Technology:
    """A vocabulary entry: ``[technology.<key>]`` in a library file.

    Attributes:
        key: Entry name (``mysql``).
        name: Display name used in titles (``MySQL``).
        kind: The slot it fills (``database`` -> ``{database}``).
        aliases: Lower-case spellings recognized in text (the key and name included).
        file: Library file that defines it.
    """

    key: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    file: str = ""


@dataclass(frozen=True)
class TechMention:
    """A technology named by the brief."""

    technology: Technology
    version: str
    from_version: str
    role: str  # "source" | "current" (where things are today: also a source) | "target" | ""
    position: int

    @property
    def label(self) -> str:
        """Display name with the (target) version: ``MySQL 8.0``."""
        return f"{self.technology.name} {self.version}".strip()


@dataclass(frozen=True)
class CountMention:
    """A number with its noun: ``12 nightly cron jobs`` -> (``job``, 12)."""

    noun: str  # count_key() of the noun
    number: float
    phrase: str
    position: int


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}`` of a template."""

    raw: str
    kind: str  # "tech" | "count" | "team_size"
    name: str  # tech kind, or "" for count/team_size
    attribute: str  # tech attribute, "n" for a bare count, ""
    nouns: tuple[str, ...]  # count keys
    fallback: str | None


_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def count_key(noun: str) -> str:
    """The key under which counts of `noun` are stored (``jobs``/``job`` -> ``job``)."""
    word = noun.strip().lower()
    return stem(word[:-1] if word.endswith("s") and len(word) > 3 else word)


@lru_cache(maxsize=4096)
def parse_placeholders(template: str) -> tuple[Placeholder, ...]:
    """The placeholders of `template`.

    Raises:
        ValueError: A placeholder is malformed (the message says which).
    """
    out = []
    for match in _PLACEHOLDER_RE.finditer(template):
        inner = match.group(1)
        spec, sep, fallback = inner.partition("|")
        spec = spec.strip()
        fb = fallback.strip() if sep else None
        if spec.startswith("count:"):
            body = spec[len("count:") :]
            attribute = ""
            if body.endswith(".n"):
                body, attribute = body[:-2], "n"
            nouns = tuple(count_key(n) for n in body.split(",") if n.strip())
            if not nouns or not all(
                re.fullmatch(r"[a-z][a-z_-]*", n.strip()) for n in body.split(",")
            ):
                raise ValueError(
                    f"'{{{inner}}}': count placeholders are {{count:<noun>[,<noun>...]}}"
                )
            out.append(Placeholder(match.group(0), "count", "", attribute, nouns, fb))
        elif spec == "team_size":
            out.append(Placeholder(match.group(0), "team_size", "", "", (), fb))
        elif spec.endswith("*"):
            name = spec[:-1]
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in PLAN_SLOTS:
                raise ValueError(f"'{{{inner}}}': the list form is {{<technology kind>*}}")
            out.append(Placeholder(match.group(0), "tech", name, "*", (), fb))
        else:
            name, _, attribute = spec.partition(".")
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"'{{{inner}}}' is not a placeholder (see docs/planning.md)")
            if attribute and attribute not in TECH_ATTRIBUTES:
                raise ValueError(
                    f"'{{{inner}}}': attribute '{attribute}' is not one of "
                    f"{', '.join(TECH_ATTRIBUTES)}"
                )
            out.append(Placeholder(match.group(0), "tech", name, attribute, (), fb))
    return tuple(out)


def index_text(template: str) -> str:
    """`template` as words for matching: each placeholder becomes its fallback, or its
    slot's name ("{database}" -> "database", "{count:jobs}" -> "jobs")."""
    if "{" not in template:
        return template
    out = template
    for p in parse_placeholders(template):
        if p.fallback is not None:
            words = p.fallback
        elif p.kind == "tech":
            words = p.name.replace("_", " ")
        elif p.kind == "count":
            words = (
                p.raw[len("{count:") :].split("|")[0].split(".")[0].replace(",", " ").rstrip("}")
            )
        else:
            words = "team"
        out = out.replace(p.raw, words, 1)
    return out


# --------------------------------------------------------------------------- extraction

_VERSION = r"v?(\d+(?:\.\d+){0,2}(?:\.x)?)"
_VERSION_AFTER = re.compile(
    r"^[\s:]*(?:version\s+|v(?=\d))?"
    + _VERSION[2:]
    + r"(?:\s*(?:to|->|→|-)\s*(?:version\s+)?v?(\d+(?:\.\d+){0,2}))?\b"
)
_FROM_TO = re.compile(
    r"^[^.;\n]{0,40}?\bfrom\s+(?:version\s+)?v?(\d+(?:\.\d+){0,2})\s+to\s+(?:version\s+)?v?(\d+(?:\.\d+){0,2})\b"
)
_TO_VERSION = re.compile(r"^[^.;\n]{0,30}?\bto\s+(?:version\s+)v?(\d+(?:\.\d+){0,2})\b")
# The edition of a standard, written after its name: "SOC 2 Type II", "SOC 1 type 2".
_EDITION = re.compile(r"^\s+type\s+(ii|i|1|2)\b")
_ROLE_CUE = re.compile(
    r"\b(?:(?P<source>from|off|replace|replacing|out of)|(?P<target>to|into|onto|on|with|in"
    r"|using|adopt|via))\s+(?:[\w.-]+\s+){0,2}$"
)

_NUMBER_WORDS = {**NUMBER_WORDS, "forty": 40, "fifty": 50, "hundred": 100, "dozen": 12}
_COUNT_RE = re.compile(
    r"(?<![\w.$€£:-])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|"
    + "|".join(_NUMBER_WORDS)
    + r")(k|m)?\+?(\s+|-)([a-z][a-z0-9'/&-]*(?:\s+[a-z][a-z0-9'/&-]*){0,2})"
)
# Words after a number that make it a duration, a size or a rate, not a count of things.
_UNITS = frozenset(
    """
    h hr hrs hour hours min mins minute minutes sec secs second seconds ms millisecond
    milliseconds day days week weeks wk wks month months year years sprint sprints quarter
    quarters am pm percent pct x times gb mb tb kb gib mib tib k m bn usd eur gbp dollars
    euros rps qps rpm req requests/s nines am pm th st nd rd
    """.split()
)
_NOT_NOUN = STOPWORDS | frozenset(
    """than per more less plus without before after since until during against between
    through via across within instead""".split()
)


_UNCOUNTABLE = frozenset(
    "staff people personnel equipment data software hardware feedback furniture".split()
)


def _plural(noun: str) -> str:
    """English plural of a count's noun taken from a context key ("endpoint_count": 48
    -> "48 endpoints"); a noun already plural is kept."""
    if noun in _UNCOUNTABLE:
        return noun
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun if noun.endswith("s") and not noun.endswith(("ss", "us")) else noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _count_value(raw: str, suffix: str | None) -> float | None:
    if raw in _NUMBER_WORDS:
        value = float(_NUMBER_WORDS[raw])
    else:
        value = float(raw.replace(",", ""))
        if "." in raw and not suffix:
            return None  # "8.0", "3.4": versions, not counts
    if suffix == "k":
        value *= 1000
    elif suffix == "m":
        value *= 1_000_000
    return value if value >= 2 and math.isfinite(value) else None


def find_counts(text: str, base: int) -> list[CountMention]:
    lowered = text.lower()
    out = []
    for m in _COUNT_RE.finditer(lowered):
        raw, suffix, sep, words = m.group(1), m.group(2), m.group(3), m.group(4).split()
        value = _count_value(raw, suffix)
        if value is None:
            continue
        before = lowered[max(0, m.start() - 12) : m.start()]
        if re.search(r"\b(version|v|p|under|over|below|above|within|than|score)\s*$", before):
            continue
        taken: list[str] = []
        for i, word in enumerate(words if sep != "-" else words[:1]):
            w = word.strip("'/&-")
            if not w or w in _NOT_NOUN:
                break
            if taken and (w.endswith("ing") or w.endswith("ed") or w.endswith("ly")):
                break
            taken.append(w)
            if i == 0 and w in _UNITS:
                break
        if not taken or taken[0] in _UNITS or taken[-1] in _UNITS:
            continue
        noun = taken[-1]
        # The phrase in the brief's own casing ("25 SaaS apps", "3,400 UI strings").
        shown = text if len(text) == len(lowered) else lowered
        words_shown = shown[m.start(4) : m.end(4)].split()[: len(taken)]
        words_shown = [w.strip("'/&-") for w in words_shown]
        number = raw if raw in _NUMBER_WORDS else shown[m.start(1) : m.end(1)]  # "Three" -> "three"
        phrase = (
            f"{number}{suffix or ''} {' '.join(words_shown)}"
            if sep != "-"
            else f"{number} {words_shown[0]}s"
        )
        out.append(CountMention(count_key(noun), value, phrase.strip(), base + m.start()))
    return out


# Where things are today, not where they go: "all our infrastructure is in eu-central-1",
# "we're still on MySQL 5.7", "hosted on Heroku".
_WHERE_WE_ARE = re.compile(
    r"\b(?:is|are|'re|'s|still|currently|today|runs?|running|hosted|lives?|living|sits?)"
    r"\s+(?:all\s+|only\s+|entirely\s+|still\s+)?(?:in|on)\s+(?:[\w.-]+\s+)?$"
)


def _role(before: str) -> str:
    """ "source" or "target" from the nearest cue word before a mention ("from X", "to
    Y"), at most two words away; "current" where the brief says things are today ("is
    in eu-central-1", "still on MySQL 5.7"); "" when there is none."""
    if _WHERE_WE_ARE.search(before):
        return "current"
    words = before.split()
    for i in range(len(words) - 1, max(-1, len(words) - 4), -1):
        m = _ROLE_CUE.search(" ".join(words[i:]) + " ")
        if m and m.start() == 0:
            return "source" if m.group("source") else "target"
    return ""


@dataclass(frozen=True)
class _Vocabulary:
    """A technology mapping prepared for scanning text: entries by name, by alias, and
    one regex of every alias (longest first)."""

    entries: tuple[Technology, ...]
    by_alias: Mapping[str, Technology]
    pattern: re.Pattern[str] | None


# The library's vocabulary is built once and never changes; preparing it per call
# (hashing every entry to find a cached regex) cost more than scanning the text.
_VOCABULARIES: dict[int, tuple[Mapping[str, Technology], _Vocabulary]] = {}


def _vocabulary(technologies: Mapping[str, Technology]) -> _Vocabulary:
    cached = _VOCABULARIES.get(id(technologies))
    if cached is not None and cached[0] is technologies:
        return cached[1]
    entries = tuple(technologies[k] for k in sorted(technologies))
    by_alias = {alias: t for t in entries for alias in t.aliases}
    aliases = sorted(by_alias, key=lambda a: (-len(a), a))
    pattern = None
    if aliases:
        body = "|".join(re.escape(a) for a in aliases)
        pattern = re.compile(r"(?<![\w.])(" + body + r")(?![\w])")
    vocabulary = _Vocabulary(entries, by_alias, pattern)
    if len(_VOCABULARIES) > 32:  # libraries loaded by tests; keep the cache bounded
        _VOCABULARIES.clear()
    _VOCABULARIES[id(technologies)] = (technologies, vocabulary)
    return vocabulary


def _techs(text: str, vocabulary: _Vocabulary, base: int) -> list[TechMention]:
    pattern = vocabulary.pattern
    by_alias = vocabulary.by_alias
    if pattern is None:
        return []
    lowered = text.lower()
    out = []
    for m in pattern.finditer(lowered):
        tech = by_alias[m.group(1)]
        after = lowered[m.end() :]
        version = from_version = ""
        direct = _VERSION_AFTER.match(after)
        ranged = _FROM_TO.match(after)
        if ranged:
            from_version, version = ranged.group(1), ranged.group(2)
        elif direct:
            if direct.group(2):
                from_version, version = direct.group(1), direct.group(2)
            else:
                version = direct.group(1)
                later = _TO_VERSION.match(after[direct.end() :])
                if later:
                    from_version, version = version, later.group(1)
        else:
            later = _TO_VERSION.match(after)
            if later:
                version = later.group(1)
        edition = _EDITION.match(after)
        if edition and not version:
            version = f"Type {edition.group(1).upper()}"
        before = lowered[max(0, m.start() - 30) : m.start()]
        role = _role(before)
        out.append(TechMention(tech, version, from_version, role, base + m.start()))
    return out


@dataclass(frozen=True)
class Slots:
    """What a brief says specifically. Immutable; built by :func:`extract_slots`."""

    techs: tuple[TechMention, ...] = ()
    counts: tuple[CountMention, ...] = ()
    team_size: float | None = None
    change: str = ""
    subject: str = ""
    version: str = ""
    people: str = ""
    resources: str = ""
    spend: str = ""
    spend_target: str = ""

    # ----------------------------------------------------------------- lookups

    def tech(self, kind: str) -> TechMention | None:
        """The target technology of `kind`: one named as a target ("to", "into"), else
        the first that is not a source, else the first source ("SCIM from Personio")
        unless the brief only says that is where things are today ("all our
        infrastructure is in eu-central-1"): then the placeholder falls back."""
        mentions = [t for t in self.techs if t.technology.kind == kind]
        if not mentions:
            return None
        for pick in (
            [t for t in mentions if t.role == "target"],
            [t for t in mentions if t.role not in ("source", "current")],
            [t for t in mentions if t.role != "current" or t.from_version],
        ):
            if pick:
                return pick[0]
        return None  # pragma: no cover

    def source(self, kind: str) -> TechMention | None:
        """The source technology of `kind` when the brief names a different one."""
        target = self.tech(kind)
        for t in self.techs:
            if t.technology.kind == kind and t.technology.key != (
                target.technology.key if target else ""
            ):
                if t.role in ("source", "current") or target is not None:
                    return t
        return None

    def count(self, nouns: Iterable[str]) -> CountMention | None:
        """The first count whose noun is one of `nouns` (count keys), in noun order."""
        for noun in nouns:
            for c in self.counts:
                if c.noun == noun:
                    return c
        return None

    def count_values(self) -> dict[str, float]:
        """``count:<noun>`` -> number (the first mention of each noun)."""
        out: dict[str, float] = {}
        for c in self.counts:
            out.setdefault(f"count:{c.noun}", c.number)
        return out

    def mentioned(self) -> tuple[str, ...]:
        """Human-readable list of what was recognized, for the explanation."""
        items = [
            t.label + (f" (from {t.from_version})" if t.from_version else "") for t in self.techs
        ]
        items += [c.phrase for c in self.counts]
        if self.team_size:
            items.append(f"team of {self.team_size:g}")
        return tuple(dict.fromkeys(items))

    # ----------------------------------------------------------------- rendering

    def value(self, p: Placeholder) -> str:
        """The text of one placeholder ("" when the slot is empty)."""
        if p.kind == "count":
            c = self.count(p.nouns)
            if c is None:
                return ""
            return f"{c.number:g}" if p.attribute == "n" else c.phrase
        if p.kind == "team_size":
            return f"{self.team_size:g}" if self.team_size else ""
        if p.name in PLAN_SLOTS:
            return str(getattr(self, p.name))
        if p.attribute == "source":
            s = self.source(p.name)
            return s.technology.name if s else ""
        if p.attribute == "*":
            return self._all_of(p.name)
        t = self.tech(p.name)
        if t is None:
            return ""
        if p.attribute == "name":
            return t.technology.name
        if p.attribute == "version":
            return t.version
        if p.attribute == "from":
            return t.from_version
        return t.label

    def _all_of(self, kind: str) -> str:
        """Every technology of `kind` the brief names, except the ones it moves away
        from, in the brief's order: "German and Japanese"."""
        labels = list(
            dict.fromkeys(
                t.label
                for t in self.techs
                if t.technology.kind == kind and t.role not in ("source", "current")
            )
        )
        if len(labels) <= 1:
            return labels[0] if labels else ""
        return ", ".join(labels[:-1]) + " and " + labels[-1]

    def render(self, template: str) -> str:
        """`template` with its placeholders filled (fallbacks for empty slots)."""
        if "{" not in template:
            return template
        out = template
        for p in parse_placeholders(template):
            text = self.value(p) or (p.fallback or "")
            out = out.replace(p.raw, text, 1)
        out = re.sub(r"\s{2,}", " ", out)
        out = re.sub(r"\s+([,.;:)])", r"\1", out)
        return out.strip()


def _walk(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for k in sorted(value, key=str):
            yield from _walk(value[k], (*path, str(k)))
    elif isinstance(value, (list, tuple)):
        yield path, value
        for item in value:
            if isinstance(item, (Mapping, list, tuple)):
                yield from _walk(item, path)
    else:
        yield path, value


_KEY_WORD = re.compile(r"[a-z]+")
# "to"/"from" in a context group are versions only when they read as one ("8.0",
# "v5"); {"from": "Jira Cloud", "to": "Linear"} names the tools themselves.
_LOOKS_LIKE_VERSION = re.compile(r"^\s*v?\d")
_COUNT_KEY_SUFFIXES = ("count", "number", "num", "total", "size")


def _context_slots(
    context: Mapping[str, Any], vocabulary: _Vocabulary
) -> tuple[list[TechMention], list[CountMention]]:
    """Technologies and counts stated as structure: ``{"database": {"engine": "MySQL",
    "version": "8.0"}}``, ``{"cron_jobs": 12}``, ``{"services": ["a", "b"]}``."""
    techs: list[TechMention] = []
    counts: list[CountMention] = []
    position = 1_000_000  # after anything in the text
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for path, value in _walk(context, ()):
        if not path:
            continue
        groups.setdefault(path[:-1], {})[path[-1].lower()] = value
    for parent, members in groups.items():
        version = next(
            (
                str(v)
                for k, v in members.items()
                if k in ("version", "target_version", "to_version")
                or (k == "to" and _LOOKS_LIKE_VERSION.match(str(v)))
            ),
            "",
        )
        from_version = next(
            (
                str(v)
                for k, v in members.items()
                if k in ("from_version", "current_version", "source_version")
                or (k == "from" and _LOOKS_LIKE_VERSION.match(str(v)))
            ),
            "",
        )
        for key, value in members.items():
            words = _KEY_WORD.findall(key.lower())
            if isinstance(value, str):
                found = _techs(value, vocabulary, position)
                for t in found:
                    role = (
                        "source"
                        if any(w in ("from", "source", "current", "old") for w in words)
                        else ""
                    )
                    role = role or (
                        "target" if any(w in ("to", "target", "new") for w in words) else t.role
                    )
                    v = t.version or (version if key not in ("from", "source") else "")
                    techs.append(
                        TechMention(t.technology, v, t.from_version or from_version, role, position)
                    )
                    position += 1
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if words and words[-1] == "size":
                    continue  # "team_size": 4 is how big one team is, not 4 teams
                nouns = [
                    w for w in words if w not in _COUNT_KEY_SUFFIXES and w not in ("of", "num", "n")
                ]
                if nouns and value >= 2 and math.isfinite(float(value)):
                    if words[-1] in _COUNT_KEY_SUFFIXES or words[0] in ("num", "number", "n"):
                        noun = nouns[-1]
                    else:
                        noun = nouns[-1]
                    phrase = f"{float(value):g} {' '.join([*nouns[:-1], _plural(nouns[-1])])}"
                    counts.append(CountMention(count_key(noun), float(value), phrase, position))
                    position += 1
            elif (
                isinstance(value, (list, tuple))
                and value
                and all(not isinstance(v, Mapping) for v in value)
            ):
                if words:
                    noun = words[-1]
                    counts.append(
                        CountMention(
                            count_key(noun),
                            float(len(value)),
                            f"{len(value)} {' '.join(words)}",
                            position,
                        )
                    )
                    position += 1
                for item in value:
                    if isinstance(item, str):
                        for t in _techs(item, vocabulary, position):
                            techs.append(t)
                            position += 1
            elif isinstance(value, (list, tuple)) and value and words:
                counts.append(
                    CountMention(
                        count_key(words[-1]),
                        float(len(value)),
                        f"{len(value)} {' '.join(words)}",
                        position,
                    )
                )
                position += 1
        del parent
    return techs, counts


def extract_slots(
    texts: Sequence[str],
    context: Mapping[str, Any],
    technologies: Mapping[str, Technology],
    team_size: float | None = None,
) -> Slots:
    """Read the brief's specifics.

    Args:
        texts: The brief's texts in reading order (name, description, requirements,
            constraints); mentions keep that order.
        context: The caller's context as given (nested dicts and lists are read as
            structure).
        technologies: The library's vocabulary.
        team_size: Team size already known (context or text), if any.
    """
    vocabulary = _vocabulary(technologies)
    techs: list[TechMention] = []
    counts: list[CountMention] = []
    base = 0
    for text in texts:
        techs.extend(_techs(text, vocabulary, base))
        counts.extend(find_counts(text, base))
        base += len(text) + 1
    c_techs, c_counts = _context_slots(context, vocabulary)
    nouns = {c.noun for c in c_counts}
    counts = c_counts + [c for c in counts if c.noun not in nouns]
    # One mention per technology. Several mentions combine: a later version is the
    # target ("MySQL 5.7 to MySQL 8.0"); what the context states wins over the text.
    best: dict[str, TechMention] = {}
    for t in sorted(techs, key=lambda t: t.position) + c_techs:
        cur = best.get(t.technology.key)
        if cur is None:
            best[t.technology.key] = t
            continue
        explicit = t.position >= 1_000_000
        version, from_version = cur.version, cur.from_version
        if t.version and t.version != cur.version:
            if explicit or not cur.version:
                version, from_version = t.version, t.from_version or from_version
            else:
                from_version, version = cur.version, t.version
                role = t.role or cur.role
        if t.from_version and (explicit or not from_version):
            from_version = t.from_version
        if not (t.version and t.version != cur.version and not explicit and cur.version):
            role = t.role if (explicit and t.role) or not cur.role else cur.role
        best[t.technology.key] = TechMention(
            cur.technology, version, from_version, role, cur.position
        )
    ordered_techs = _upgrade_target(texts, tuple(sorted(best.values(), key=lambda t: t.position)))
    ordered_counts = tuple(sorted(counts, key=lambda c: c.position))
    return Slots(
        ordered_techs,
        ordered_counts,
        team_size,
        subject=_subject(texts, context),
        version=_release_version(texts, context, ordered_techs),
        people=_people(texts, context),
        resources=_resources(texts, context),
        **_spend(texts),
    )


# "Our Postgres 11 cluster is out of support. Upgrade it to 16": the target version
# written away from the technology's name.
_UPGRADE_TO = re.compile(
    r"\b(?:upgrade|upgrading|move|moving|migrate|migrating|bump|jump|go|get)\b[^.;\n]{0,40}?"
    r"\bto\s+(?:version\s+)?v?(\d+(?:\.\d+){0,2})\b(?!\.\d|[%\d])(?:\s*([a-z]+))?",
    re.IGNORECASE,
)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _upgrade_target(
    texts: Sequence[str], techs: tuple[TechMention, ...]
) -> tuple[TechMention, ...]:
    """When the brief names one versioned technology and, elsewhere, a later version
    to upgrade to ("Postgres 11 ... upgrade it to 16"), that version is its target."""
    versioned = [t for t in techs if t.version]
    if len(versioned) != 1 or versioned[0].from_version:
        return techs
    current = versioned[0]
    for text in texts:
        for m in _UPGRADE_TO.finditer(text):
            found = m.group(1)
            unit = (m.group(2) or "").lower()
            tail = find_counts(text[m.start(1) :], 0)
            if unit in _UNITS or (tail and tail[0].position == 0):
                continue  # "to 16 nodes", "down to 200 ms": a count or a measure
            if _version_key(found) > _version_key(current.version):
                upgraded = TechMention(
                    current.technology, found, current.version, current.role, current.position
                )
                return tuple(upgraded if t is current else t for t in techs)
    return techs


_SUBJECT_KEYS = ("service", "app", "application", "product", "system", "subject", "component")
_SUBJECT = re.compile(
    r"\b(?:the|our|its|their)\s+((?:[a-z][\w-]*\s+(?:and\s+)?){0,2}?(?:flow|service|api|app|"
    r"application|platform|portal|database|module|modules|system|product|site|website|cluster|"
    r"monolith|pipeline|team|store|shop))\b"
)
# A named part of the work that is not the whole subject: "the new shipping-rates
# plugin", "this morning's certificate rotation", "the billing and notification parts"
# (at least one word before a general noun of project work).
_THING = re.compile(
    r"(?:\b(?:the|our|its|their|this|these)\s+|'s\s+)((?:new\s+|old\s+|existing\s+)?"
    r"(?:(?!(?:the|our|its|their|this|these|a|an|and|or)\b)[a-z][\w-]*\s+(?:and\s+)?){1,2}?"
    r"(?:features?|plugins?|extensions?|integrations?|"
    r"tools?|parts?|rotation|engine|rules|workflows?|process(?:es)?|forms?|queues?|tickets?|"
    r"reports?|dashboards?|partners?|vendors?|contracts?))\b"
)
# A role the brief names: "a head of design", "our first Head of Customer Support".
_ROLE_TITLE = re.compile(
    r"\b(?:[Hh]ead|[Dd]irector|VP|[Cc]hief|[Mm]anager|[Ll]ead)\s+of\s+(?:the\s+)?[A-Za-z][a-z]+"
    r"(?:\s+[A-Z][a-z]+)*"
)
# A role named by its title without capitals: "1 engineering manager", "a product
# designer" (a role noun after a count of one or an article and one or two words).
_ROLE_NOUN = (
    r"(?:manager|engineer|designer|developer|analyst|scientist|architect|recruiter|"
    r"coordinator|director|officer|administrator|specialist|consultant|writer|strategist|"
    r"marketer|accountant|researcher|owner|lead|controller|counsel)"
)
_ROLE_NAMED = re.compile(
    r"\b(?:1|one|a|an)\s+((?:(?!(?:new|good|great|few|lot|single|full|part|first|second|"
    r"the|our|and|or|more|other|extra)\b)[a-z]+(?<!ed)[\s-]){1,2}" + _ROLE_NOUN + r")\b"
)
# An error the brief quotes: "returned 502s", "HTTP 503", "error 500", "504 errors".
_ERROR_CODE = re.compile(
    r"\b(?:(?:http|error|status(?:\s+code)?|returned|returning|returns|throwing|throws)\s+"
    r"[1-5]\d\d|[1-5]\d\d(?:s\b|\s+(?:errors?|responses?)\b))(?!\w|\.\d)"
)
_RELEASE_VERSION = re.compile(
    r"\b(?:version|release|v)\s*(\d+(?:\.\d+){1,2})\b|\b(\d+\.\d+\.\d+)\b"
)


_PEOPLE_KEYS = ("people", "names", "newcomers", "new_hires", "hires", "members", "joiners")
_PEOPLE = re.compile(
    r"\b(?:[Oo]nboard|[Ww]elcome|[Ii]ntroduce)\s+([A-Z][a-z]+(?:(?:,\s*|\s+and\s+)[A-Z][a-z]+)*)"
)


def _people(texts: Sequence[str], context: Mapping[str, Any]) -> str:
    names: list[str] = []
    for key in _PEOPLE_KEYS:
        value = context.get(key)
        if isinstance(value, (list, tuple)):
            names = [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
            break
    if not names:
        for text in texts:
            m = _PEOPLE.search(text)
            if m:
                names = re.split(r",\s*|\s+and\s+", m.group(1))
                break
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_MONEY = re.compile(
    r"(?<![\w.])(?:[$€£]\s?\d[\d,]*(?:\.\d+)?\s?(?:k|m|bn)?|(?:usd|eur|gbp|chf)\s?\d[\d,]*"
    r"(?:\.\d+)?\s?(?:k|m|bn)?|\d[\d,]*(?:\.\d+)?\s?(?:k|m|bn)?\s?(?:usd|eur|gbp|chf|dollars|"
    r"euros|pounds))(?:\s?(?:/|per|a|an|each)\s?(?:month|mo|year|yr|annum|quarter|week))?(?![\w])",
    re.IGNORECASE,
)
# A cue just before an amount that makes it the goal rather than today's spend.
_TARGET_CUE = re.compile(r"(?:\bto|under|below|target|save|saving|savings|by|cut|of)\s*$")


def money_amounts(text: str) -> list[tuple[int, str]]:
    """The money amounts of `text` as written ("$40k/month", "USD 12,000", "62,000 USD
    a month"), with their positions."""
    return [(m.start(), m.group(0)) for m in _MONEY.finditer(text)]


def _spend(texts: Sequence[str]) -> dict[str, str]:
    """``spend``: the spend the brief starts from (an amount after "from", or the first
    one without a goal cue); ``spend_target``: the goal ("to under 45,000 USD a month",
    "save $40k/month")."""
    spend = target = ""
    for text in texts:
        for start, amount in money_amounts(text):
            before = text[max(0, start - 12) : start].lower().rstrip()
            if _TARGET_CUE.search(before) and not before.endswith("from"):
                target = target or amount
            else:
                spend = spend or amount
    return {"spend": spend, "spend_target": target}


_RESOURCE_KEYS = ("resources", "entities")
# "Endpoints for X, Y and Z", "CRUD for X", "an API for X that ..." -- up to a clause
# boundary. Endpoint phrases win over "API for" (they list the resources themselves).
_RESOURCE_END = (
    r"(?=$|[.;:()]|\s+(?:that|which|with|so|by|in|at|under|to|from|using|via|behind|"
    r"over|on|within|before|after|for)\b)"
)
_RESOURCES = (
    re.compile(
        r"\b(?:endpoints?|crud|operations|routes)\s+(?:for|on|to manage|managing)\s+"
        r"(?:the\s+|our\s+)?([a-z][\w\s,/-]*?)" + _RESOURCE_END
    ),
    re.compile(
        r"\b(?:api|apis|service)\s+(?:for|to manage|managing)\s+(?:the\s+|our\s+)?"
        r"([a-z][\w\s,/-]*?)" + _RESOURCE_END
    ),
)


def _resources(texts: Sequence[str], context: Mapping[str, Any]) -> str:
    for key in _RESOURCE_KEYS:
        value = context.get(key)
        if isinstance(value, (list, tuple)):
            names = [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
            if names:
                return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if isinstance(value, str) and value.strip() and len(value) <= 80:
            return value.strip()
    for pattern in _RESOURCES:
        for text in texts:
            m = pattern.search(text.lower())
            if m and len(m.group(1).split()) <= 10:
                return text[m.start(1) : m.end(1)].strip(" ,")
    return ""


def _subject(texts: Sequence[str], context: Mapping[str, Any]) -> str:
    for key in _SUBJECT_KEYS:
        value = context.get(key)
        if isinstance(value, str) and value.strip() and len(value) <= 60:
            return value.strip()
    for text in texts[:2]:
        m = _SUBJECT.search(text.lower())
        if m:
            return text[m.start(1) : m.end(1)]
    return ""


def _release_version(
    texts: Sequence[str], context: Mapping[str, Any], techs: Sequence[TechMention]
) -> str:
    value = context.get("version")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
        return str(value)
    tech_versions = {t.version for t in techs} | {t.from_version for t in techs}
    for text in texts:
        for m in _RELEASE_VERSION.finditer(text.lower()):
            found = m.group(1) or m.group(2)
            if found not in tech_versions:
                return found
    return ""


# --------------------------------------------------------------------------- specifics

KIND_AREAS: dict[str, tuple[str, ...]] = {
    "database": ("database", "backend"),
    "warehouse": ("data-engineering", "database"),
    "orchestrator": ("data-engineering",),
    "scheduler": ("data-engineering", "devops"),
    "transform": ("data-engineering",),
    "streaming": ("backend", "data-engineering"),
    "cloud": ("devops", "infrastructure", "kubernetes"),
    "container_platform": ("devops", "infrastructure", "kubernetes"),
    "ci": ("ci-cd", "devops"),
    "iac": ("devops", "infrastructure", "kubernetes"),
    "monitoring": ("observability", "sre"),
    "paging": ("observability", "incident-management", "sre"),
    "frontend_framework": ("frontend",),
    "backend_framework": ("backend",),
    "language": ("backend",),
    "mobile_platform": ("mobile",),
    "identity_provider": ("security", "it-administration"),
    "payments": ("backend",),
    "crm": ("backend",),
    "cms": ("frontend",),
    "ecommerce_platform": ("frontend", "backend"),
    "compliance_framework": ("security",),
    "secrets_manager": ("security", "devops", "kubernetes"),
    "cdn": ("frontend", "infrastructure"),
    "analytics_tool": ("analytics",),
    "replication_tool": ("data-engineering",),
    "table_format": ("data-engineering",),
    "data_quality": ("data-engineering", "qa"),
    "code_quality": ("ci-cd",),
    "artifact_registry": ("ci-cd", "devops"),
    "backup_tool": ("sre", "devops", "database"),
    "cloud_service": ("devops", "infrastructure", "database"),
}
"""Capability areas whose tasks a technology of each kind belongs to (a task of another
area is not about it). Kinds not listed go only to the scoping task."""

# Capitalized words that are ordinary words at the start of a clause, or too generic
# to be a specific of the brief.
_GENERIC_CAPS = frozenset(
    """
    a an the and or of to for in on at by with from our we us it its this that these those
    i my you your they their each every all any no not new build set create add make run
    use keep get ship move plan deliver write find fix check ensure support must should
    can will may api apis rest ui ux etl elt slo slos sla sli usd eur gbp utc ci cd qa hr
    it id url http https sql db ok pr prs mvp kpi okr sev1 sev2 ii iii tbd faq gb mb tb pb
    organise organize harden localize localise extract reduce roll migrate upgrade deploy
    release onboard hire troubleshoot split cut map rightsize publish send segment sync
    restore tell alert backfill ingest load automatic strict short professional dates
    desks movers network policies access reviews card product staff weekly two three one
    done first last beat drift rate rates threat dependency penetration endpoints lint
    laptops ingress secrets infrastructure autoscaling slos alerts contracts each no
    """.split()
)
_SENTENCE_START = re.compile(r"(^|[.!?;]\s+|\n)\s*$")
# A name may hold a possessive before another capitalized word ("King's Cross",
# "St. Aldhelm's Health"); a possessive that ends the name is not part of it.
_NAME_WORD = r"[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?:['\u2019]s(?=\s+[A-Z]))?"
_PROPER = re.compile(r"\b(" + _NAME_WORD + r"(?:(?:\s*&\s*|\s)" + _NAME_WORD + r")*)\b")
_ACRONYM = re.compile(r"\b([A-Z][A-Z0-9]{1,6}(?:-[A-Z0-9]+)?)\b")
_IDENTIFIER = re.compile(
    r"(?<![\w.-])([a-z][a-z0-9]*(?:[-_][a-z0-9]+)*-?\d[a-z0-9-]*|[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,}"
    r"|[a-z][a-z0-9]+(?:\.[a-z]{2,}))(?![\w-])"
)
# A release of the product itself: "version 5", "release 6.2", "the 6.x versions".
_RELEASE_MENTION = re.compile(
    r"\b(?:version|release)\s+v?\d+(?:\.(?:\d+|x))*\b|(?<![\w.])\d+\.x\b", re.IGNORECASE
)
_VERSIONED = re.compile(r"\b([A-Za-z][\w-]*)\s+v?(\d+\.\d+(?:\.\d+)?)\b")
_DURATION_SPEC = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)?\s*(?:ms|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|"
    r"months?|years?|gb|tb|mb|%)(?![\w])"
)
_GENERIC_CONTEXT_KEYS = frozenset(
    {"environment", "env", "stage", "channel", "severity", "hours_per_day", "tech_stack"}
)


def _proper_nouns(text: str) -> list[str]:
    out = []
    for m in _PROPER.finditer(text):
        phrase = m.group(1).strip()
        words = phrase.split()
        if _SENTENCE_START.search(text[: m.start()]) and (
            len(words) == 1 or words[0].lower() in _GENERIC_CAPS
        ):
            words = words[1:]  # a capital at the start of a clause proves nothing
            if not words:
                continue
        while words and words[0].lower() in _GENERIC_CAPS:
            words = words[1:]
        # ... but a single capital letter closing a name is part of it ("Annex A").
        while (
            words
            and words[-1].lower() in _GENERIC_CAPS | {"&"}
            and not (len(words) > 1 and len(words[-1]) == 1 and words[-1].isupper())
        ):
            words = words[:-1]
        if not words:
            continue
        joined = re.sub(r"['\u2019]s$", "", " ".join(words))
        if len(joined) >= 2 and not joined.isupper():
            out.append(joined)
    return out


def specifics_of(
    text: str, technologies: Mapping[str, Technology], slots: Slots | None = None
) -> list[str]:
    """The specific things one piece of text names, in order of appearance:
    technologies with versions, counts with their nouns, versions of other named
    things, identifiers ("customer-portal", "eu-west-1", "api.shipfast.io"), proper
    nouns and acronyms ("Strava", "BambooHR", "Lisbon", "RDS"). With `slots`, a
    technology is labelled as the whole brief describes it ("MySQL 8.0 (from 5.7)")."""
    vocabulary = _vocabulary(technologies)
    found: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    merged = {m.technology.key: m for m in slots.techs} if slots is not None else {}
    for t in _techs(text, vocabulary, 0):
        best = merged.get(t.technology.key, t)  # the brief's whole story of this technology
        label = best.label + (f" (from {best.from_version})" if best.from_version else "")
        found.append((t.position, label))
    pattern = vocabulary.pattern
    if pattern is not None:
        for m in pattern.finditer(text.lower()):
            after = text.lower()[m.end() :]
            version = _VERSION_AFTER.match(after) or _EDITION.match(after)
            covered.append((m.start(), m.end() + (version.end() if version else 0)))

    def free(start: int) -> bool:
        return not any(a <= start < b for a, b in covered)

    for m in _ERROR_CODE.finditer(text.lower()):
        if free(m.start()):
            found.append((m.start(), text[m.start() : m.end()]))
            covered.append((m.start(), m.end()))
    for c in find_counts(text, 0):
        if free(c.position):
            found.append((c.position, c.phrase))
            covered.append((c.position, c.position + len(c.phrase)))

    for m in _RELEASE_MENTION.finditer(text):
        if free(m.start()):
            found.append((m.start(), m.group(0)))
            covered.append((m.start(), m.end()))
    for m in _VERSIONED.finditer(text):
        if free(m.start()) and m.group(1).lower() not in STOPWORDS | {"version", "v"}:
            found.append((m.start(), f"{m.group(1)} {m.group(2)}"))
            covered.append((m.start(), m.end()))
    for m in _IDENTIFIER.finditer(text.lower()):
        if free(m.start()) and re.search(r"[a-z]", m.group(1)) and not m.group(1)[0].isdigit():
            found.append((m.start(), text[m.start() : m.end()]))
            covered.append((m.start(), m.end()))
    for pattern in (_SUBJECT, _THING):
        for m in pattern.finditer(text.lower()):
            if free(m.start(1)):
                found.append((m.start(1), text[m.start(1) : m.end(1)]))
                covered.append((m.start(1), m.end(1)))
    for m in _ROLE_TITLE.finditer(text):
        if free(m.start()):
            found.append((m.start(), m.group(0)))
            covered.append((m.start(), m.end()))
    for m in _ROLE_NAMED.finditer(text):
        if free(m.start(1)):
            found.append((m.start(1), m.group(1)))
            covered.append((m.start(1), m.end(1)))
    for start, amount in money_amounts(text):
        if free(start):
            found.append((start, amount))
            covered.append((start, start + len(amount)))
    for m in _DURATION_SPEC.finditer(text.lower()):
        if free(m.start()):
            found.append((m.start(), text[m.start() : m.end()]))
            covered.append((m.start(), m.end()))
    for noun in _proper_nouns(text):
        start = text.find(noun)
        if start >= 0 and free(start):
            found.append((start, noun))
            covered.append((start, start + len(noun)))
    for m in _ACRONYM.finditer(text):
        if free(m.start()) and m.group(1).lower() not in _GENERIC_CAPS:
            found.append((m.start(), m.group(1)))
            covered.append((m.start(), m.end()))
    return list(dict.fromkeys(label for _, label in sorted(found)))


def release_mentions(text: str) -> list[str]:
    """The releases of the product `text` names, as written ("release 6.2", "6.x")."""
    return [m.group(0) for m in _RELEASE_MENTION.finditer(text)]


def context_specifics(context: Mapping[str, Any]) -> list[str]:
    """Specific values stated in the context: names, identifiers and quantities
    (``{"service": "customer-portal"}``, ``{"idp": "Okta"}``, ``{"attendees": 300}``);
    generic settings (environment, channel...) are left out."""
    out: list[str] = []
    for path, value in _walk(context, ()):
        if not path or path[0].lower() in _GENERIC_CONTEXT_KEYS:
            continue
        key = path[-1].replace("_", " ")
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            words = key.split()
            if value >= 2 and words[-1] in ("count", "number", "total") and len(words) > 1:
                out.append(f"{value:g} {' '.join(words[:-1])}")
            elif value >= 2 and not key.endswith(("size", "hours")):
                out.append(f"{key} {value:g}")
        elif isinstance(value, str):
            text = value.strip()
            if (
                text
                and len(text) <= 40
                and (any(ch.isupper() or ch.isdigit() or ch in "-." for ch in text) or " " in text)
            ):
                out.append(text)
        elif isinstance(value, (list, tuple)):
            out.extend(
                str(v).strip()
                for v in value
                if isinstance(v, str) and str(v).strip() and len(str(v)) <= 40
            )
    return list(dict.fromkeys(out))
