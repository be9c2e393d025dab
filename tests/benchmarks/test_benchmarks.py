"""The benchmarks' shared helpers, and the GPU check's CPU-sized smoke path (what CI runs
of benchmarks/gpu_check.sh where there is no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402


def test_paired_runs_alternate_the_order() -> None:
    calls: list[str] = []
    out = _common.paired(4, {"a": lambda: calls.append("a") or 1,
                             "b": lambda: calls.append("b") or 2})
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert out == {"a": [1, 1, 1, 1], "b": [2, 2, 2, 2]}
    assert _common.median(_common.ratios([2.0, 3.0, 9.0], [1.0, 1.0, 3.0])) == 3.0


def test_machine_line_says_how_busy_the_machine_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert _common.machine_line() == (
        "machine: 4 CPUs, load average 9.0 (overloaded: figures are noisy)")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert _common.machine_line().endswith("(quiet)")
    assert _common.machine_info() == {"cpus": 4, "load_average": 0.4}


@pytest.mark.slow
def test_gpu_check_smoke_path_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable,
           "STUDIO_HOME": str(tmp_path / "home")}
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = list(tmp_path.glob("gpu_check-smoke-*.json"))
    assert len(reports) == 1 and list(tmp_path.glob("gpu_check-smoke-*.log"))
    report = json.loads(reports[0].read_text())
    assert report["smoke"] is True and set(report["sizes"]) == {"sd2", "sdxl"}
    for row in report["sizes"].values():
        assert row["raw_s"] > 0 and row["worker_s"] > 0 and row["previews"] >= 1
        assert {"sdpa", "channels_last"} <= set(row["speedups_it_s"])
    assert report["oom"] == {**report["oom"], "too_large_failed": True, "hint_shown": True,
                             "next_job_ran": True, "simulated": True}
