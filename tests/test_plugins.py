"""Plugin loading through entry points: discovery, a broken plugin, TALKINGHEAD_PLUGINS."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

GOOD = '''
from talkinghead import Provider, Route
from talkinghead.hookspecs import hookimpl

class GoodProvider(Provider):
    name = "goodone"
    def routes(self):
        return [Route(provider="goodone", model="m", price_per_second={"std": 1.0, "pro": 2.0})]

@hookimpl
def register_providers(register):
    register(GoodProvider)
'''


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
    install_dist(tmp_path, "th_broken", {"broken": "th_brokenmod"},
                 {"th_brokenmod": "raise ImportError('needs libfoo')\n"})
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
