"""Start-up: importing studio.core costs no request-kind module, yet every kind is known."""

from __future__ import annotations

import json
import subprocess
import sys

from studio.core.paths import REPO_ROOT

PROBE = r"""
import json, sys
from studio.core.requests import REQUEST_TYPES, Request
before = [m for m in ("studio.core.explore", "studio.core.upscale") if m in sys.modules]
explore = Request.from_dict({"kind": "explore", "model": "m", "prompt": "p"})
upscale = Request.from_dict({"kind": "upscale", "model": "m"})
print(json.dumps({"before": before, "explore": type(explore).__name__,
                  "upscale": type(upscale).__name__, "missing": REQUEST_TYPES.get("video"),
                  "image": REQUEST_TYPES["image"].__name__}))
"""


def test_kinds_defined_elsewhere_are_imported_when_first_asked_for() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report == {"before": [], "explore": "ExploreRequest", "upscale": "UpscaleRequest",
                      "missing": None, "image": "ImageRequest"}
