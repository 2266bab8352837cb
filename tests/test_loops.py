"""The server's event loop choice (`--event-loop`): uvloop where installed, asyncio's own
loop on request or where uvloop cannot be had."""

from __future__ import annotations

import gc
import sys
import warnings

import pytest

from plansmith_server import config as config_mod
from plansmith_server import loops


async def _loop_name() -> str:
    return loops.running_name()


def test_auto_and_uvloop_run_on_uvloop_where_it_is_installed():
    pytest.importorskip("uvloop", reason="uvloop has no build for this platform")
    assert loops.factory("auto")[0] == "uvloop"
    assert loops.run(_loop_name(), "auto") == "uvloop"
    assert loops.run(_loop_name(), "uvloop") == "uvloop"


def test_asyncio_runs_on_asyncios_own_loop():
    assert loops.factory("asyncio") == ("asyncio", None)
    assert loops.run(_loop_name(), "asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_an_explicit_uvloop_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loops.factory("auto") == ("asyncio", None)
    assert loops.run(_loop_name(), "auto") == "asyncio"
    with pytest.raises(loops.LoopUnavailable, match="--event-loop asyncio"):
        loops.factory("uvloop")


def test_a_refused_choice_leaves_no_coroutine_unawaited(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail here
        with pytest.raises(loops.LoopUnavailable):
            loops.run(_loop_name(), "uvloop")
        with pytest.raises(ValueError, match="unknown event loop 'trio'"):
            loops.run(_loop_name(), "trio")
        gc.collect()


def test_the_flag_and_its_environment_variable_choose_the_loop():
    assert config_mod.load([], env={}).event_loop == "auto"
    assert config_mod.load(["--event-loop", "ASYNCIO"], env={}).event_loop == "asyncio"
    assert config_mod.load([], env={"PLANSMITH_EVENT_LOOP": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(SystemExit):
        config_mod.load([], env={"PLANSMITH_EVENT_LOOP": "trio"})
