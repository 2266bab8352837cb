"""Capability names: normalization, implication hierarchy and the fit test.

Agents and tasks describe skills in free words ("React", "front-end developer",
"Postgres", "UI/UX design"). Everything is compared after :func:`normalize_capability`,
which maps spelling variants, abbreviations and role names onto one canonical,
kebab-case name.

Capabilities are hierarchical, in one direction only: **a specific skill implies the
general area it belongs to, never the reverse.** An agent with ``react`` can do a task
that requires ``frontend``; an agent with only ``frontend`` cannot take a task that
requires ``react`` (that is exactly what a "must use React" mandate asks for). Roles
expand to the areas they cover: ``full-stack`` implies ``frontend`` and ``backend``,
``devops`` implies ``ci-cd`` and ``infrastructure``, ``sre`` implies ``observability``
and ``incident-management``.

This module is also used by the project scheduler, so it stays dependency-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "AREA_CAPABILITIES",
    "agent_can_do",
    "expand_capabilities",
    "infer_capabilities",
    "known_technologies",
    "missing_capabilities",
    "normalize_capabilities",
    "normalize_capability",
]

# Spelling variants, abbreviations and role names -> canonical capability. Keys are in
# the "hyphenated" form produced by `_hyphenate` (lower-case, runs of non-alphanumerics
# collapsed to "-").
_ALIASES: dict[str, str] = {
    # Languages and frameworks.
    "js": "javascript",
    "ecmascript": "javascript",
    "ts": "typescript",
    "py": "python",
    "python3": "python",
    "golang": "go",
    "c-sharp": "csharp",
    "net": "dotnet",
    "dot-net": "dotnet",
    "asp-net": "dotnet",
    "node": "nodejs",
    "node-js": "nodejs",
    "reactjs": "react",
    "react-js": "react",
    "next-js": "nextjs",
    "vue-js": "vue",
    "vuejs": "vue",
    "angularjs": "angular",
    "ruby-on-rails": "rails",
    "ror": "rails",
    "spring-boot": "spring",
    "html": "html-css",
    "css": "html-css",
    "html5": "html-css",
    "html-css": "html-css",
    "tailwind": "html-css",
    "reactnative": "react-native",
    # Databases.
    "postgres": "postgresql",
    "postgre": "postgresql",
    "psql": "postgresql",
    "pg": "postgresql",
    "mongo": "mongodb",
    "sql": "database",
    "databases": "database",
    "db": "database",
    "dba": "database",
    "database-administration": "database",
    "rdbms": "database",
    # Infrastructure and delivery.
    "k8s": "kubernetes",
    "k8": "kubernetes",
    "eks": "kubernetes",
    "gke": "kubernetes",
    "aks": "kubernetes",
    "ci-cd": "ci-cd",
    "cicd": "ci-cd",
    "ci": "ci-cd",
    "cd": "ci-cd",
    "continuous-integration": "ci-cd",
    "continuous-delivery": "ci-cd",
    "continuous-deployment": "ci-cd",
    "build-release": "ci-cd",
    "dev-ops": "devops",
    "iac": "infrastructure",
    "infra": "infrastructure",
    "infrastructure-as-code": "infrastructure",
    "platform": "infrastructure",
    "platform-engineering": "infrastructure",
    "amazon-web-services": "aws",
    "google-cloud": "gcp",
    "google-cloud-platform": "gcp",
    "microsoft-azure": "azure",
    "github-action": "github-actions",
    "gitlab": "gitlab-ci",
    "argo-cd": "argocd",
    "argo": "argocd",
    "site-reliability": "sre",
    "site-reliability-engineering": "sre",
    "reliability": "sre",
    "monitoring": "observability",
    "monitoring-and-alerting": "observability",
    "alerting": "observability",
    "logging": "observability",
    "o11y": "observability",
    "incident-response": "incident-management",
    "incident-commander": "incident-management",
    "on-call": "incident-management",
    "oncall": "incident-management",
    "networks": "networking",
    "network": "networking",
    "sysadmin": "it-administration",
    "it": "it-administration",
    "it-admin": "it-administration",
    "it-support": "it-administration",
    "system-administration": "it-administration",
    # Design, quality, security.
    "ui": "ui-ux-design",
    "ux": "ui-ux-design",
    "ui-ux": "ui-ux-design",
    "ux-ui": "ui-ux-design",
    "ui-design": "ui-ux-design",
    "ux-design": "ui-ux-design",
    "ui-ux-design": "ui-ux-design",
    "ux-ui-design": "ui-ux-design",
    "product-design": "ui-ux-design",
    "visual-design": "ui-ux-design",
    "interaction-design": "ui-ux-design",
    "user-experience": "ui-ux-design",
    "user-interface": "ui-ux-design",
    "web-design": "ui-ux-design",
    "design": "ui-ux-design",
    "qa": "qa",
    "quality-assurance": "qa",
    "testing": "qa",
    "test": "qa",
    "tests": "qa",
    "test-automation": "qa",
    "automated-testing": "qa",
    "manual-testing": "qa",
    "e2e-testing": "qa",
    "appsec": "security",
    "application-security": "security",
    "infosec": "security",
    "secops": "security",
    "devsecops": "security",
    "cybersecurity": "security",
    "cyber-security": "security",
    "penetration-testing": "security",
    "pentest": "security",
    "pentesting": "security",
    # Areas and roles.
    "front-end": "frontend",
    "front-end-development": "frontend",
    "frontend-development": "frontend",
    "web-frontend": "frontend",
    "back-end": "backend",
    "backend-development": "backend",
    "back-end-development": "backend",
    "server-side": "backend",
    "fullstack": "full-stack",
    "full-stack": "full-stack",
    "ml": "machine-learning",
    "machine-learning": "machine-learning",
    "ai": "machine-learning",
    "data-science": "machine-learning",
    "data": "data-engineering",
    "data-engineering": "data-engineering",
    "etl": "data-engineering",
    "big-data": "data-engineering",
    "mobile-development": "mobile",
    "mobile-apps": "mobile",
    "mobile-app": "mobile",
    "tech-writing": "technical-writing",
    "documentation": "technical-writing",
    "docs": "technical-writing",
    "project-manager": "project-management",
    "pm": "project-management",
    "program-management": "project-management",
    "scrum-master": "project-management",
    "delivery-management": "project-management",
    "engineering-manager": "people-management",
    "engineering-management": "people-management",
    "team-lead": "people-management",
    "team-leadership": "people-management",
    "tech-lead": "architecture",
    "management": "people-management",
    # HR is its own area: an HR partner runs policies, contracts and paperwork, not the
    # engineering team (which is people-management).
    "hr": "hr",
    "human-resources": "hr",
    "people-operations": "hr",
    "people-ops": "hr",
    "hr-business-partner": "hr",
    "hrbp": "hr",
    # Business roles reach the area they work in.
    "recruiter": "recruiting",
    "recruitment": "recruiting",
    "technical-recruiter": "recruiting",
    "talent-acquisition": "recruiting",
    "talent": "recruiting",
    "sourcer": "recruiting",
    "sourcing": "recruiting",
    "marketer": "marketing",
    "digital-marketing": "marketing",
    "growth-marketing": "marketing",
    "email-marketer": "email-marketing",
    "copywriter": "copywriting",
    "event": "event-management",
    "events": "event-management",
    "event-manager": "event-management",
    "events-manager": "event-management",
    "event-planner": "event-management",
    "event-planning": "event-management",
    "event-coordinator": "event-management",
    "technical-writer": "technical-writing",
    "tech-writer": "technical-writing",
    "translator": "translation",
    "translations": "translation",
    "localisation": "localization",
    "l10n": "localization",
    "office-manager": "facilities",
    "program-manager": "project-management",
    "office-management": "facilities",
    "workplace": "facilities",
    "facility-management": "facilities",
    "facilities-management": "facilities",
    "grc": "compliance",
    "governance-risk-compliance": "compliance",
    "accountant": "finance",
    "accounting": "finance",
    "cloud-finops": "finops",
    "software-architecture": "architecture",
    "solution-architecture": "architecture",
    "system-design": "architecture",
    "architect": "architecture",
    "product-designer": "ui-ux-design",
    "product-manager": "project-management",
    "product-management": "project-management",
    "db-admin": "database",
}

# Role suffixes stripped when a name is not known as-is ("React developer" -> "react").
_ROLE_SUFFIXES = (
    "-developer",
    "-development",
    "-dev",
    "-engineer",
    "-engineering",
    "-designer",
    "-specialist",
    "-expert",
    "-administrator",
    "-admin",
    "-architect",
    "-lead",
    "-manager",
    "-coordinator",
    "-officer",
    "-skills",
    "-programming",
    "-programmer",
)

# Specific -> general implications (applied transitively).
_IMPLIES: dict[str, tuple[str, ...]] = {
    "react": ("frontend", "javascript"),
    "vue": ("frontend", "javascript"),
    "angular": ("frontend", "typescript"),
    "svelte": ("frontend", "javascript"),
    "nextjs": ("react",),
    "html-css": ("frontend",),
    "typescript": ("javascript",),
    "figma": ("ui-ux-design",),
    "sketch": ("ui-ux-design",),
    "django": ("python", "backend"),
    "flask": ("python", "backend"),
    "fastapi": ("python", "backend"),
    "spring": ("java", "backend"),
    "rails": ("ruby", "backend"),
    "laravel": ("php", "backend"),
    "nodejs": ("javascript", "backend"),
    "express": ("nodejs",),
    "dotnet": ("csharp", "backend"),
    "postgresql": ("database",),
    "mysql": ("database",),
    "mariadb": ("database",),
    "mongodb": ("database",),
    "redis": ("database",),
    "oracle": ("database",),
    "sql-server": ("database",),
    "kubernetes": ("infrastructure",),
    "helm": ("kubernetes",),
    "openshift": ("kubernetes",),
    "terraform": ("infrastructure",),
    "pulumi": ("infrastructure",),
    "ansible": ("infrastructure",),
    "docker": ("infrastructure",),
    "aws": ("cloud",),
    "gcp": ("cloud",),
    "azure": ("cloud",),
    "cloud": ("infrastructure",),
    "github-actions": ("ci-cd",),
    "gitlab-ci": ("ci-cd",),
    "jenkins": ("ci-cd",),
    "circleci": ("ci-cd",),
    "argocd": ("ci-cd", "kubernetes"),
    "prometheus": ("observability",),
    "grafana": ("observability",),
    "datadog": ("observability",),
    "opentelemetry": ("observability",),
    "elasticsearch": ("observability", "database"),
    "airflow": ("data-engineering",),
    "spark": ("data-engineering",),
    "dbt": ("data-engineering",),
    "snowflake": ("data-engineering", "database"),
    "bigquery": ("data-engineering", "database"),
    "kafka": ("data-engineering",),
    "swift": ("ios",),
    "swiftui": ("ios",),
    "objective-c": ("ios",),
    "ios": ("mobile",),
    "android": ("mobile",),
    "flutter": ("mobile",),
    "react-native": ("mobile", "javascript"),
    "cypress": ("qa",),
    "playwright": ("qa",),
    "selenium": ("qa",),
    "full-stack": ("frontend", "backend"),
    "devops": ("ci-cd", "infrastructure"),
    "sre": ("observability", "incident-management", "devops"),
    "email-marketing": ("marketing",),
    "copywriting": ("marketing",),
    "finops": ("finance",),
    "translation": ("localization",),
    "pytorch": ("machine-learning", "python"),
    "tensorflow": ("machine-learning", "python"),
}

# Broad areas of work; a technology mandate lands on the tasks of its area(s).
AREA_CAPABILITIES: frozenset[str] = frozenset(
    {
        "frontend",
        "backend",
        "database",
        "infrastructure",
        "cloud",
        "ci-cd",
        "observability",
        "mobile",
        "ios",
        "android",
        "data-engineering",
        "ui-ux-design",
        "machine-learning",
        "qa",
        "kubernetes",
    }
)

# Languages imply no area on their own; a mandate to use one applies to these areas.
_LANGUAGE_AREAS: dict[str, tuple[str, ...]] = {
    "python": ("backend", "data-engineering"),
    "java": ("backend",),
    "go": ("backend",),
    "ruby": ("backend",),
    "php": ("backend",),
    "csharp": ("backend",),
    "rust": ("backend",),
    "kotlin": ("android", "backend"),
    "scala": ("data-engineering", "backend"),
    "javascript": ("frontend",),
    "typescript": ("frontend",),
}

# Words in free text (task descriptions, requirements) that hint at a capability.
_WORD_HINTS: tuple[tuple[str, str], ...] = (
    ("frontend", "frontend"),
    ("ui", "frontend"),
    ("page", "frontend"),
    ("screen", "frontend"),
    ("form", "frontend"),
    ("responsive", "frontend"),
    ("css", "frontend"),
    ("component", "frontend"),
    ("dashboard", "frontend"),
    ("api", "backend"),
    ("backend", "backend"),
    ("endpoint", "backend"),
    ("server", "backend"),
    ("service", "backend"),
    ("authentication", "backend"),
    ("email", "backend"),
    ("notification", "backend"),
    ("payment", "backend"),
    ("integration", "backend"),
    ("webhook", "backend"),
    ("database", "database"),
    ("schema", "database"),
    ("sql", "database"),
    ("query", "database"),
    ("table", "database"),
    ("index", "database"),
    ("mobile", "mobile"),
    ("ios", "ios"),
    ("android", "android"),
    ("deploy", "devops"),
    ("infrastructure", "infrastructure"),
    ("kubernetes", "kubernetes"),
    ("docker", "devops"),
    ("container", "devops"),
    ("cloud", "cloud"),
    ("cicd", "ci-cd"),
    ("pipeline", "ci-cd"),
    ("etl", "data-engineering"),
    ("warehouse", "data-engineering"),
    ("ingest", "data-engineering"),
    ("analytics", "data-engineering"),
    ("report", "data-engineering"),
    ("security", "security"),
    ("encrypt", "security"),
    ("vulnerability", "security"),
    ("permission", "security"),
    ("gdpr", "security"),
    ("test", "qa"),
    ("qa", "qa"),
    ("design", "ui-ux-design"),
    ("ux", "ui-ux-design"),
    ("mockup", "ui-ux-design"),
    ("wireframe", "ui-ux-design"),
    ("monitor", "observability"),
    ("alert", "observability"),
    ("metric", "observability"),
    ("logging", "observability"),
    ("documentation", "technical-writing"),
    ("docs", "technical-writing"),
    ("ml", "machine-learning"),
    ("model", "machine-learning"),
    ("recommendation", "machine-learning"),
    ("prediction", "machine-learning"),
)

# Seniority and similar qualifiers say nothing about the skill itself.
_QUALIFIER_PREFIXES = (
    "senior-",
    "junior-",
    "lead-",
    "principal-",
    "staff-",
    "mid-level-",
    "expert-",
    "experienced-",
)

_NON_ALNUM = re.compile(r"[^a-z0-9+#]+")


def _hyphenate(text: str) -> str:
    lowered = text.strip().lower()
    # Symbols that carry meaning in technology names, before punctuation is dropped.
    lowered = lowered.replace("c++", "cpp").replace("c#", "csharp").replace("f#", "fsharp")
    lowered = lowered.replace(".net", " dotnet").replace("&", " and ")
    lowered = (
        lowered.replace("node.js", "nodejs").replace("next.js", "nextjs").replace("vue.js", "vue")
    )
    lowered = lowered.replace("react.js", "react")
    hyphenated = _NON_ALNUM.sub("-", lowered).strip("-")
    return hyphenated.replace("+", "").replace("#", "")


@lru_cache(maxsize=4096)
def normalize_capability(name: str) -> str:
    """Map a free-form capability or role name to its canonical kebab-case name.

    Examples: ``"JS" -> "javascript"``, ``"k8s" -> "kubernetes"``,
    ``"Postgres" -> "postgresql"``, ``"CI/CD" -> "ci-cd"``,
    ``"UI/UX Design" -> "ui-ux-design"``, ``"Frontend Developer" -> "frontend"``,
    ``"QA" -> "qa"``, ``"Machine Learning" -> "machine-learning"``.

    Args:
        name: The capability as written by a person.

    Returns:
        The canonical name, or ``""`` for a blank input. Unknown names are returned in
        normalized (lower-case, hyphenated) form so that they still compare equal to
        the same spelling elsewhere.
    """
    key = _hyphenate(name)
    if not key:
        return ""
    key = key.replace("-and-", "-")
    for prefix in _QUALIFIER_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix) :]
    if key in _ALIASES:
        return _ALIASES[key]
    compact = key.replace("-", "")
    if compact in _ALIASES:
        return _ALIASES[compact]
    if key in _IMPLIES or key in AREA_CAPABILITIES:
        return key
    for suffix in _ROLE_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            stripped = key[: -len(suffix)]
            return normalize_capability(stripped)
    if key.endswith("s") and key[:-1] in _ALIASES:
        return _ALIASES[key[:-1]]
    return key


def normalize_capabilities(names: Iterable[str]) -> tuple[str, ...]:
    """Normalize, de-duplicate and sort capability names (blank ones are dropped)."""
    return tuple(sorted({c for c in (normalize_capability(n) for n in names) if c}))


@lru_cache(maxsize=4096)
def _closure(capability: str) -> frozenset[str]:
    result = {capability}
    stack = [capability]
    while stack:
        for implied in _IMPLIES.get(stack.pop(), ()):
            if implied not in result:
                result.add(implied)
                stack.append(implied)
    return frozenset(result)


def expand_capabilities(names: Iterable[str]) -> frozenset[str]:
    """Everything an agent with `names` can do: normalized names plus all they imply."""
    result: set[str] = set()
    for name in names:
        canonical = normalize_capability(name)
        if canonical:
            result |= _closure(canonical)
    return frozenset(result)


def missing_capabilities(
    agent_caps: Iterable[str], required_caps: Iterable[str]
) -> tuple[str, ...]:
    """Required capabilities (normalized, sorted) that `agent_caps` do not cover."""
    have = expand_capabilities(agent_caps)
    return tuple(
        sorted({c for c in (normalize_capability(r) for r in required_caps) if c and c not in have})
    )


def agent_can_do(agent_caps: Iterable[str], required_caps: Iterable[str]) -> bool:
    """Whether an agent with `agent_caps` holds every one of `required_caps`.

    Both sides are normalized; the agent's side is expanded through the implication
    hierarchy (``react`` covers ``frontend``), the required side is not. A task with no
    required capabilities can be done by anyone.
    """
    return not missing_capabilities(agent_caps, required_caps)


def mandate_areas(technology: str) -> tuple[str, ...]:
    """Areas of work a "must use <technology>" mandate applies to (sorted)."""
    canonical = normalize_capability(technology)
    areas = (_closure(canonical) - {canonical}) & AREA_CAPABILITIES
    if canonical == "kubernetes":
        areas = areas | {"kubernetes"}
    if not areas:
        areas = frozenset(_LANGUAGE_AREAS.get(canonical, ()))
    return tuple(sorted(areas))


@lru_cache(maxsize=1)
def known_technologies() -> frozenset[str]:
    """Canonical names that count as concrete technologies (usable in mandates)."""
    techs = {name for name in _IMPLIES if name not in AREA_CAPABILITIES}
    techs |= set(_LANGUAGE_AREAS)
    techs -= {"full-stack", "devops", "sre", "cloud"}
    return frozenset(techs)


def infer_capabilities(tokens: Iterable[str]) -> tuple[str, ...]:
    """Capabilities hinted at by normalized text tokens (see :mod:`.text`), sorted.

    Args:
        tokens: Stemmed tokens, e.g. from :func:`plansmith_server.planning.text.tokenize`.
    """
    from .text import stem  # local import: keep this module importable on its own

    token_set = set(tokens)
    found = {cap for word, cap in _WORD_HINTS if stem(word) in token_set}
    return tuple(sorted(found))
