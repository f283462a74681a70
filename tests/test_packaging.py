"""Every distribution in the repository (the core, each plugin under plugins/, the example
plugin) ships a ``py.typed`` marker (PEP 561), so users' type checkers read its annotations.
Hatchling puts every file inside a wheel's package directories into the wheel unless the build
config excludes it; checked here from each pyproject.toml, without building."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml")),
            ROOT / "examples" / "talkinghead-still" / "pyproject.toml"]


def _wheel_config(pyproject: Path) -> dict:
    data = tomllib.loads(pyproject.read_text())
    return data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})


def test_every_plugin_directory_is_covered():
    names = {p.parent.name for p in PROJECTS}
    assert {d.name for d in (ROOT / "plugins").iterdir() if (d / "pyproject.toml").is_file()} <= names
    assert len(PROJECTS) >= 7  # the core, five plugins, the example


@pytest.mark.parametrize("pyproject", PROJECTS, ids=lambda p: p.parent.name)
def test_each_wheel_package_carries_py_typed(pyproject: Path):
    wheel = _wheel_config(pyproject)
    packages = wheel.get("packages")
    assert packages, f"{pyproject}: no [tool.hatch.build.targets.wheel] packages"
    for package in packages:
        marker = pyproject.parent / package / "py.typed"
        assert marker.is_file(), f"{marker} is missing"
    # An exclude or an include list could leave the marker out: whoever adds one checks the
    # wheel (unzip -l) and extends this test.
    assert not wheel.keys() & {"exclude", "include", "only-include"}, pyproject
