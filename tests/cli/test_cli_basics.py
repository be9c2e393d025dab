"""The CLI's front door: bad input is one line on stderr with exit status 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["gen", "image", "--model", "m", "--width", "100"], "multiple of 8"),
        (["gen", "image", "--model", "m", "--steps", "0"], "Steps"),
        (["gen", "image", "--model", "m", "--guidance", "nan"], "finite"),
        (["gen", "image", "--model", "m", "--scheduler", "Bogus"], "Unknown scheduler"),
        (["gen", "image", "--model", "m", "--seed", "abc"], "seed"),
        (["gen", "image", "--prompt", "x"], "--model"),
        (["gen", "image", "--model", "m", "--steps", "many"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    code = main([*args, "--out", str(tmp_path)] if args[0] == "gen" and "--model" in args else args)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and err.startswith("studio: ")
    assert needle in err
    assert not any(tmp_path.rglob("*.png"))


def test_bad_input_fails_before_importing_torch(tmp_path):
    code = (
        "import sys; from studio.cli import main; "
        "rc = main(['gen', 'image', '--model', 'm', '--width', '12', "
        f"'--out', {str(tmp_path)!r}]); "
        "print('torch' in sys.modules, rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", str(EXIT_BAD_INPUT)]
    assert proc.stderr.strip().splitlines() == [
        "studio: Width must be between 64 and 4096, not 12."
    ]


def test_python_m_studio_runs_the_cli():
    proc = run_cli("gen", "image", "--model", "m", "--height", "65")
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.strip() == "studio: Height must be a multiple of 8, not 65."


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code = main(["gen", "image", "--model", str(missing), "--steps", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and str(missing) in err
    assert not any(tmp_path.rglob("*.png"))


def test_info_on_a_missing_file(tmp_path, capsys):
    code = main(["info", str(tmp_path / "nothing.png")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1


def test_info_on_a_file_without_recipe(tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png at all")
    code = main(["info", str(junk)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and "Traceback" not in err
