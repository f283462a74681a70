"""Plugins register their provider classes without loading heavy dependencies (start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "numpy", "cv2", "jwt", "cryptography", "structlog", "av")

SCRIPT = f"""
import json, sys, types
from talkinghead.plugins import get_provider_classes
classes = get_provider_classes()
for cls in classes.values():
    cls({{}}).routes()
loaded = [m for m in {HEAVY!r} if isinstance(sys.modules.get(m), types.ModuleType)
          and type(sys.modules[m]) is types.ModuleType]
print(json.dumps({{"providers": sorted(classes), "loaded": loaded}}))
"""


def test_registering_and_listing_providers_loads_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"inferencesh", "kling", "fal", "local", "mock"} <= set(found["providers"])
    assert found["loaded"] == []


def test_a_lazy_module_is_the_real_module_once_used():
    code = ("import sys; from talkinghead import lazy; sys.modules.pop('colorsys', None); "
            "m = lazy.module('colorsys'); assert 'colorsys' in sys.modules; "
            "print(m.rgb_to_hsv(1, 0, 0), sys.modules['colorsys'] is m, type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(0.0, 1.0, 1) True module"
