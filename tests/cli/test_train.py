"""`studio train`: bad input is one line and exit 2; a run prints the model's path; `--json`
is the window's protocol (events on stdout, pause/resume/stop on stdin); Ctrl+C stops with
the checkpoint kept and `--resume` goes on from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.paths import REPO_ROOT
from studio.core.training import RunPaths
from tests.training_toys import shapes, snapshot

TINY = ["--resolution", "16", "--batch", "4", "--lr", "0.002", "--threads", "1",
        "--save-every", "4", "--sample-every", "4", "--eval-every", "2", "--seed", "1"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes(tmp_path_factory.mktemp("toy") / "shapes", n=8)


@pytest.mark.parametrize(("args", "needle"), [
    (["train"], "Say what to train: studio train composer|gan|lora|sketch|text|vae"),
    (["train", "gan", "--name", "x"], "Choose a data folder to train on."),
    (["train", "gan", "--data", "{missing}", "--name", "x"], "does not exist"),
    (["train", "gan", "--data", "{toy}"], "Give the run a name"),
    (["train", "gan", "--data", "{toy}", "--name", "x", "--lr", "2"], "Learning rate must be "
                                                                      "between"),
    (["train", "gan", "--data", "{toy}", "--name", "x", "--steps", "many"], "Steps must be a "
                                                                           "number"),
    (["train", "gan", "--data", "{toy}", "--name", "x", "--resolution", "48"],
     "A GAN trains at 16, 32, 64 or 128 px"),
    (["train", "gan", "--data", "{empty}", "--name", "x"], "No images found"),
    (["train", "text", "--data", "{toy}", "--name", "x", "--base", "builtin:faces"],
     "builtin:faces is a GAN model; the Text LoRA fine-tunes causal LM models."),
    (["train", "--resume", "nothing-here"], "There is no run named 'nothing-here'"),
    (["train", "frobnicate"], "invalid choice"),
    (["train", "sketch", "--data", "{toy}", "--name", "x", "--width", "huge"],
     "invalid choice: 'huge'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, toy: Path,
                                          tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    fill = {"toy": str(toy), "missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty")}
    code = main([a.format(**fill) for a in args])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert needle in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("studio: ")
    assert captured.out == ""
    from studio.core import paths

    assert not paths.lab_dir().exists() or not any(paths.lab_dir().iterdir())


def test_check_prints_the_report_and_trains_nothing(toy: Path, capsys) -> None:
    before = snapshot(toy)
    assert main(["train", "gan", "--data", str(toy), "--check"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"8 of 8 files usable in {toy}."
    assert main(["train", "gan", "--data", str(toy), "--check", "--json"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["event"] == "data" and event["report"]["usable"] == 8
    assert event["report"]["lines"][0] == f"8 of 8 files usable in {toy}."
    assert snapshot(toy) == before


def test_a_run_prints_the_model_path_and_resume_goes_on(toy: Path, capsys) -> None:
    assert main(["train", "gan", "--data", str(toy), "--name", "cli", "--steps", "4",
                 *TINY]) == 0
    model = Path(capsys.readouterr().out.strip())
    assert (model / "model.safetensors").is_file() and model.name == "cli"
    config = RunPaths("cli").read_config()
    assert (config.recipe, config.steps, config.lr, config.resolution) == ("gan", 4, 0.002, 16)
    assert config.data == str(toy)
    assert main(["train", "--resume", "cli", "--steps", "6", "--threads", "1"]) == 0
    assert Path(capsys.readouterr().out.strip()) == model
    assert [r.step for r in RunPaths("cli").read_metrics()] == list(range(1, 7))
    assert RunPaths("cli").read_config().steps == 6
    assert main(["train", "vae", "--resume", "cli"]) == EXIT_BAD_INPUT
    assert "trains a gan, not a vae" in capsys.readouterr().err


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", "train", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def events_until(proc: subprocess.Popen, want: str, seen: list[dict[str, Any]],
                 timeout: float = 60) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if event["event"] == want:
            return event
    raise AssertionError(f"no {want!r} event; saw {[e['event'] for e in seen]}, "
                         f"stderr {proc.stderr.read() if proc.stderr else ''}")


def test_json_events_and_stdin_commands(toy: Path) -> None:
    proc = spawn("gan", "--data", str(toy), "--name", "win", "--steps", "100000",
                 "--json", *TINY)
    assert proc.stdin is not None
    seen: list[dict[str, Any]] = []
    try:
        data = events_until(proc, "data", seen)
        assert data["report"]["usable"] == 8
        step = events_until(proc, "step", seen)
        assert step["total"] == 100000 and step["record"]["step"] == 1
        events_until(proc, "samples", seen)
        proc.stdin.write("pause\n")
        proc.stdin.flush()
        assert events_until(proc, "paused", seen)["paused"] is True
        time.sleep(0.3)
        state = RunPaths("win").read_state()
        assert state["state"] == "paused"
        paused_at = state["step"]
        proc.stdin.write("resume\n")
        proc.stdin.flush()
        assert events_until(proc, "paused", seen)["paused"] is False
        after = events_until(proc, "step", seen)
        assert after["record"]["step"] == paused_at + 1
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        finished = events_until(proc, "finished", seen)
        proc.stdin.close()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0
    kinds = {e["event"] for e in seen}
    assert {"data", "step", "samples", "checkpoint", "paused", "status", "finished"} <= kinds
    assert finished["state"] == "stopped"
    model = Path(finished["path"])
    assert (model / "model.safetensors").is_file()
    samples = next(e for e in seen if e["event"] == "samples")
    assert samples["step"] == 4 and all(Path(f).is_file() for f in samples["files"])
    run = RunPaths("win")
    last = max(e["record"]["step"] for e in seen if e["event"] == "step")
    assert run.latest_checkpoint() == run.checkpoint(last)  # resumable where it stopped


def test_json_failure_is_an_event_and_exit_2(toy: Path) -> None:
    proc = spawn("gan", "--data", str(toy / "nowhere"), "--name", "bad", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT
    assert json.loads(out.strip().splitlines()[-1])["event"] == "failed"
    assert "does not exist" in json.loads(out.strip().splitlines()[-1])["message"]
    assert err.count("\n") == 1 and "does not exist" in err


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
def test_ctrl_c_stops_keeping_the_checkpoint(toy: Path) -> None:
    proc = spawn("gan", "--data", str(toy), "--name", "intr", "--steps", "100000", *TINY)
    run = RunPaths("intr")
    deadline = time.monotonic() + 60
    while run.latest_checkpoint() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert Path(out.strip()).is_dir()
    assert "studio train --resume intr" in err
    state = run.read_state()
    assert state["state"] == "stopped"
    assert run.latest_checkpoint() == run.checkpoint(state["step"])
