"""PostgreSQL connection URLs (`--db postgresql://...`): checked at start-up, and never
shown with their password.

The password may sit in the URL (`postgresql://user:secret@host/db`); everything the
server prints, logs, traces or returns about the database uses `Dsn.display`, where it is
`***`, and every error text from the driver passes through `Dsn.scrub` first (libpq
quotes the URL it could not parse). Better still, keep it out of the URL: libpq reads
`PGPASSWORD` and `~/.pgpass` (`passfile=`) as usual.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

SCHEMES = ("postgresql", "postgres")
"""The URL schemes that select the PostgreSQL store."""

# Connection settings the server adds unless the URL sets them: a dead peer (a crashed
# host, a dropped route) is noticed by TCP keepalive within idle + interval x count
# seconds (25 s), and by tcp_user_timeout while data waits unacknowledged, instead of at
# the kernel's TCP timeout (about 15 minutes); a connection attempt gives up after
# connect_timeout seconds.
DEFAULT_PARAMS: dict[str, str] = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "25000",
    "application_name": "plansmith-server",
}

_INT_PARAMS = (
    "port",
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)


class DsnError(ValueError):
    """A malformed PostgreSQL URL; its message never holds the password."""


def is_postgres(value: str) -> bool:
    """Whether `--db` names a PostgreSQL database (a URL with a PostgreSQL scheme)."""
    return value.split(":", 1)[0].lower() in SCHEMES and "://" in value


@dataclass(frozen=True)
class Dsn:
    """A checked PostgreSQL URL: the libpq settings to connect with, and how to show it."""

    params: dict[str, str] = field(repr=False)
    display: str
    """The URL with its password replaced by ***: what logs, traces and errors show."""
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        return self.display

    def scrub(self, text: str) -> str:
        """`text` with every form of the password in it replaced by ***."""
        if not self.password:
            return text
        for form in {
            self.password,
            urllib.parse.quote(self.password, safe=""),
            urllib.parse.quote(self.password),
        }:
            if form:
                text = text.replace(form, "***")
        return text


def redact_url(url: str) -> str:
    """`url` with the password part of its user info replaced by *** (no parsing that
    could fail: used on malformed URLs too)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", url)


def parse(url: str) -> Dsn:
    """Checks `url` and returns its settings with the server's defaults added; raises
    `DsnError` (without the password) when libpq could not use it."""
    from psycopg import conninfo

    display = redact_url(url)
    password = ""
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:([^/@]*)@", url)
    if m:
        password = urllib.parse.unquote(m.group(1))
    probe = Dsn({}, display, password)
    if not is_postgres(url):
        raise DsnError(f"{display!r} is not a postgresql:// URL")
    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's words, which quote the URL
        msg = probe.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise DsnError(f"{display!r} is not a valid PostgreSQL URL: {msg}") from None
    password = str(params.get("password") or password)
    probe = Dsn({}, display, password)
    for name in _INT_PARAMS:
        value = params.get(name)
        # A port per host (host=a,b&port=1,2); the other settings take one number.
        pattern = r"\d{1,9}(,\d{1,9})*" if name == "port" else r"\d{1,9}"
        if value is not None and not re.fullmatch(pattern, str(value)):
            raise DsnError(
                f"{display!r}: {name} must be a whole number, not {probe.scrub(str(value))!r}"
            )
    merged = {**DEFAULT_PARAMS, **{k: str(v) for k, v in params.items() if v is not None}}
    return Dsn(merged, display, password)
