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


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["gen", "image", "--model", "m", "--guidance", "-1e308"],
         "CFG scale must be between 0 and 50, not -1e+308."),
        (["gen", "image", "--model", "m", "--steps", "-5"], "Steps must be between 1 and 1000"),
        (["gen", "music", "--model", "m", "--blend", "-.5"], "Blend must be between 0 and 1"),
        (["gen", "text", "--model", "m", "--prompt", "x", "--temperature", "-1"],
         "Temperature must be between 0 and 5, not -1."),
        (["explore", "point", "--model", "m", "--anchors", "1,2", "--weights", "-1,2"],
         "A blend weight must be between 0 and 1e+06, not -1."),
    ],
)
def test_negative_numbers_are_values_that_validation_judges(args, needle, capsys, tmp_path):
    code = main([*args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err == f"studio: {needle}\n" or (err.count("\n") == 1 and needle in err)
    assert "expected one argument" not in err


@pytest.mark.parametrize("modality", ["image", "text", "music"])
def test_a_prompt_with_lone_surrogates_is_refused_at_validation(modality, capsys, tmp_path):
    code = main(["gen", modality, "--model", "m", "--prompt", "a \udcff fox",
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err == "studio: The prompt is not valid UTF-8 text.\n"
    assert not any(tmp_path.rglob("*.*"))


def test_undecodable_prompt_bytes_on_the_command_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"studio", b"gen", b"text", b"--model", b"m",
         b"--prompt", b"caf\xe9 \xff", b"--out", str(tmp_path).encode()],
        capture_output=True, timeout=120,
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.decode().strip().splitlines() == [
        "studio: The prompt is not valid UTF-8 text."]
    assert not any(tmp_path.rglob("*.*"))


@pytest.mark.parametrize("modality", ["image", "text", "music"])
def test_flag_defaults_are_the_requests_own(modality, capsys):
    """The flags come from the request fields' metadata: no default is written twice."""
    import importlib

    from studio.cli import build_parser
    from studio.core.fields import spec

    module = importlib.import_module(f"studio.cli.gen_{modality}")
    args = build_parser().parse_args(["gen", modality, "--model", "m", "--prompt", "p"])
    request_type = {"image": "ImageRequest", "text": "TextRequest", "music": "MusicRequest"}
    cls = getattr(importlib.import_module("studio.core.requests"), request_type[modality])
    built = cls.from_dict({"model": "m", "prompt": "p", "seed": args.seed,
                           **{n: getattr(args, n) for n in module.FIELDS}})
    assert built == cls(model="m", prompt="p")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gen", modality, "--help"])
    help_text = capsys.readouterr().out
    for name in module.FIELDS:
        assert spec(cls, name).flag in help_text


def test_info_on_an_a1111_png_imports_neither_numpy_nor_torch(tmp_path):
    """`studio info` is a metadata reader: it answers without loading numpy or torch."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, "
                                "Size: 64x64")
    picture = tmp_path / "cat.png"
    Image.new("RGB", (64, 64)).save(picture, pnginfo=info)
    code = (
        "import sys, io, contextlib; from studio.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    rc = main(['info', {str(picture)!r}])\n"
        "print('numpy' in sys.modules, 'torch' in sys.modules, rc, '\"a cat\"' in out.getvalue())"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False", "0", "True"], proc.stderr
