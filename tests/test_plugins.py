"""Plugin loading through entry points: discovery, a broken plugin, TALKINGHEAD_PLUGINS."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


def plugin_module(provider: str, cls: str, hook: str = "register_providers") -> str:
    """The source of a plugin module registering one provider class from the hook named ``hook``."""
    return f'''
from talkinghead import Provider, Route
from talkinghead.hookspecs import hookimpl

class {cls}(Provider):
    name = "{provider}"
    def routes(self):
        return [Route(provider="{provider}", model="m", price_per_second={{"std": 1.0, "pro": 2.0}})]

@hookimpl
def {hook}(register):
    register({cls})
'''


GOOD = plugin_module("goodone", "GoodProvider")
MISSPELLED = plugin_module("typo", "Typo", hook="register_provider")  # the hook is register_providers
BROKEN = "raise ImportError('needs libfoo')\n"


def install_dist(root: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution on sys.path: a dist-info with entry points."""
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[talkinghead]\n{lines}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    install_dist(tmp_path, "th_good", {"goodone": "th_goodmod"}, {"th_goodmod": GOOD})
    install_dist(tmp_path, "th_broken", {"broken": "th_brokenmod"}, {"th_brokenmod": BROKEN})
    monkeypatch.syspath_prepend(str(tmp_path))
    return fresh_plugins


def test_entry_points_are_discovered(site, monkeypatch):
    monkeypatch.delenv("TALKINGHEAD_PLUGINS", raising=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        classes = site.get_provider_classes()
    assert classes["goodone"].__name__ == "GoodProvider"
    assert "mock" in classes  # the bundled plugin is found the same way as third parties


def test_broken_plugin_is_reported_and_others_still_load(site, monkeypatch):
    monkeypatch.delenv("TALKINGHEAD_PLUGINS", raising=False)
    with pytest.warns(RuntimeWarning, match=r"plugin 'broken' .*ImportError: needs libfoo"):
        classes = site.get_provider_classes()
    assert "goodone" in classes


def test_plugins_env_restricts_loading(site, monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_PLUGINS", "goodone")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # broken is not even imported, so it cannot warn
        classes = site.get_provider_classes()
    assert set(classes) == {"goodone"}


def test_empty_plugins_env_loads_none(site, monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_PLUGINS", "")
    assert site.get_provider_classes() == {}


def test_direct_registration(fresh_plugins, monkeypatch):
    import types

    monkeypatch.setenv("TALKINGHEAD_PLUGINS", "")
    module = types.ModuleType("inline_plugin")
    exec(GOOD, module.__dict__)
    fresh_plugins.register(module, name="inline")
    assert list(fresh_plugins.get_provider_classes()) == ["goodone"]


def test_a_misspelled_hookimpl_is_a_clear_load_error(tmp_path, monkeypatch, fresh_plugins):
    install_dist(tmp_path, "th_typo", {"typo": "th_typomod"}, {"th_typomod": MISSPELLED})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TALKINGHEAD_PLUGINS", "typo,mock")
    with pytest.warns(RuntimeWarning, match=r"plugin 'typo'.*'register_provider' is not a talkinghead hook "
                                             r"\(did you mean 'register_providers'\?\)"):
        classes = fresh_plugins.get_provider_classes()
    assert "typo" not in classes and "mock" in classes
    info = {i.name: i for i in fresh_plugins.report()}
    assert info["typo"].loaded is False and "register_provider" in info["typo"].error
    assert info["typo"].version == "1.0" and info["mock"].loaded
    with pytest.raises(Exception, match="not a talkinghead hook"):
        fresh_plugins.register(__import__("th_typomod"), name="again")


def test_plugins_command_shows_load_errors(tmp_path):
    import json
    import os
    import subprocess
    import sys

    install_dist(tmp_path, "th_typo", {"typo": "th_typomod"}, {"th_typomod": MISSPELLED})
    install_dist(tmp_path, "th_broken", {"broken": "th_brokenmod"}, {"th_brokenmod": BROKEN})
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TALKINGHEAD_PLUGINS": "typo,broken,mock"}
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "talkinghead.cli", "plugins", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["typo"]["status"] == "failed" and "did you mean 'register_providers'" in rows["typo"]["error"]
    assert rows["broken"]["error"] == "ImportError: needs libfoo"
    assert rows["mock"]["status"] == "loaded" and rows["mock"]["routes"] == ["mock/mock-avatar"]
    assert rows["kling"]["status"] == "not loaded (TALKINGHEAD_PLUGINS)"
    text = subprocess.run([sys.executable, "-W", "ignore", "-m", "talkinghead.cli", "plugins"], capture_output=True,
                          text=True, env=env, timeout=60).stdout
    assert "error ImportError: needs libfoo" in text and "route mock/mock-avatar" in text
