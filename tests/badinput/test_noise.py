"""One set-up for every process: library noise never reaches the terminal; notices do,
as one line; tracebacks only with -v."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from studio.core import environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch):
    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "TQDM_DISABLE",
                 "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    yield
    environment.configure_logging(verbose=False)


def _log_everything() -> None:
    logging.getLogger("transformers.generation").warning("Setting `pad_token_id` to ...")
    logging.getLogger("diffusers.models").warning("should be kept in float32")
    try:
        raise ValueError("deep inside")
    except ValueError:
        logging.getLogger("studio.engines.runner").exception("loading failed")
    environment.notices.warning("Saved 1 file but could not add it to the history.")


def test_only_notices_reach_stderr_and_in_one_line(quiet_env, capsys) -> None:
    environment.setup_environment()
    environment.configure_logging(verbose=False)
    _log_everything()
    err = capsys.readouterr().err
    assert err == "studio: warning: Saved 1 file but could not add it to the history.\n"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert os.environ["TQDM_DISABLE"] == "1"  # stderr is not a terminal under capsys


def test_verbose_shows_everything_with_tracebacks(quiet_env, capsys) -> None:
    environment.setup_environment()
    environment.setup_environment(verbose=True)
    environment.configure_logging(verbose=True)
    _log_everything()
    err = capsys.readouterr().err
    assert "Traceback" in err and "deep inside" in err and "studio.notice" in err


def test_the_gui_keeps_details_in_its_log_file(quiet_env, tmp_path: Path, capsys) -> None:
    log_file = tmp_path / "studio.log"
    environment.configure_logging(log_file=log_file)
    _log_everything()
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert capsys.readouterr().err.count("\n") == 1
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback" in text and "deep inside" in text


def test_library_warnings_are_filtered_by_module_and_message(quiet_env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        environment.quiet_warnings()
        warnings.warn_explicit("some advice", UserWarning, "x.py", 1,
                               module="transformers.modeling_utils")
        warnings.warn("`torch_dtype` is deprecated; this model requires torchvision",
                      UserWarning, stacklevel=1)
        warnings.warn("a warning of our own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of our own"]


def test_core_environment_imports_no_heavy_library() -> None:
    code = ("import sys, studio.core.environment, studio.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'PySide6', "
            "'studio.ui.app') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_a_good_run_prints_only_its_paths(tmp_path: Path) -> None:
    """stdout: the paths; stderr (not a terminal): only the composer's two lines saying what
    it understood and played (the README documents them), no library noise."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), STUDIO_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "studio", "gen", "music", "--model",
                           "builtin:composer", "--prompt", "a jig", "--seconds", "2",
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [["composer:", "asked"],
                                                          ["composer:", "played"]], proc.stderr
    paths = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.suffix for p in paths] == [".wav", ".mid"] and all(p.is_file() for p in paths)


@pytest.mark.slow
def test_a_musicgen_run_prints_no_library_warnings(tiny: Path, tmp_path: Path) -> None:
    """transformers warns about MusicGen's pad/bos token ids on every load: not for artists."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), STUDIO_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "studio", "gen", "music", "--model", str(tiny),
                           "--prompt", "a tune", "--seconds", "1", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert [Path(p).suffix for p in proc.stdout.splitlines()] == [".wav"]
