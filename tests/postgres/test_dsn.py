"""PostgreSQL URLs: checked as libpq reads them, shown and scrubbed without the password."""

from __future__ import annotations

import pytest

from plansmith_server.storage import dsn


def test_the_password_is_replaced_wherever_the_url_is_shown():
    d = dsn.parse("postgresql://ann:p%40ss%2Fword@db.internal:5432/plansmith?sslmode=require")
    assert d.display == "postgresql://ann:***@db.internal:5432/plansmith?sslmode=require"
    assert d.password == "p@ss/word"
    assert "p@ss/word" not in repr(d) and "p%40ss" not in repr(d)
    assert d.scrub("auth failed for p@ss/word (p%40ss%2Fword)") == "auth failed for *** (***)"


def test_several_hosts_take_a_port_each():
    assert dsn.parse("postgresql://u@h1:5432,h2:5433/db").params["port"] == "5432,5433"


def test_keepalives_and_timeouts_are_added_unless_the_url_sets_them():
    d = dsn.parse("postgresql://db/plansmith?keepalives_idle=30")
    assert d.params["keepalives"] == "1" and d.params["keepalives_idle"] == "30"
    assert d.params["connect_timeout"] == "5" and d.params["tcp_user_timeout"] == "25000"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:Secret-1@[::1/db",
        "postgresql://u:Secret-1@host:port/db",
        "postgresql://u:Secret-1@host/db?nonsense=1",
        "postgresql://u:Secret-1@host/db?connect_timeout=10,5",
    ],
)
def test_a_malformed_url_is_refused_without_its_password(url):
    with pytest.raises(dsn.DsnError) as e:
        dsn.parse(url)
    assert "Secret-1" not in str(e.value) and "u:***@" in str(e.value)
