"""Bad input, table-driven: exit status 2, exactly one line on stderr, no traceback, and
no file (not even a temporary one) in the output folder.

The real CLI runs in-process (`studio.cli.main`) with the built-in GANs, the composer and
a tiny text model; a few cases run in a subprocess where the process boundary matters
(bytes that are not UTF-8 in argv, library noise on a stderr that is not a terminal).
GUI forms and drops belong to the panels' own suites.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, main

LONG = "word " * 400  # more tokens than the tiny text model reads (64 positions)
SURROGATE = "a fox \udcff"  # how a byte that is not UTF-8 reaches argv

TORCH_ADVICE = ("weights_only=False", "`weights_only` set to `False`", "add_safe_globals")

IMG = ["gen", "image", "--model", "m"]
TXT = ["gen", "text", "--model", "m", "--prompt", "hello"]
MUS = ["gen", "music", "--model", "m", "--prompt", "a tune"]
POINT = ["explore", "point", "--model", "builtin:faces"]
WALK = ["explore", "walk", "--model", "builtin:faces"]

# (args, a piece of the one line expected on stderr, or None when any sentence will do)
CASES: list[tuple[list[str], str | None] | object] = [
    # ── studio gen image: checked before any model is loaded ──
    ([*IMG, "--width", "100"], "multiple of 8"),
    ([*IMG, "--width", "12"], "Width must be between 64 and"),
    ([*IMG, "--width", "8192"], "Width must be between 64 and"),
    ([*IMG, "--height", "65"], "Height must be a multiple of 8"),
    ([*IMG, "--height", "0"], "Height"),
    ([*IMG, "--width", "wide"], "invalid int value"),
    ([*IMG, "--steps", "0"], "Steps"),
    ([*IMG, "--steps", "1001"], "Steps"),
    ([*IMG, "--steps", "many"], "invalid int value"),
    ([*IMG, "--steps", "2.5"], "invalid int value"),
    ([*IMG, "--guidance", "nan"], "finite"),
    ([*IMG, "--guidance", "inf"], "finite"),
    ([*IMG, "--guidance", "abc"], "invalid float value"),
    ([*IMG, "--guidance", "1e9"], "CFG scale must be between 0 and 50"),
    pytest.param([*IMG, "--guidance", "-1e308"], "CFG scale must be between"),
    ([*IMG, "--scheduler", "Bogus"], "Unknown scheduler"),
    ([*IMG, "--seed", "abc"], "seed"),
    ([*IMG, "--seed", "-5"], "seed"),
    ([*IMG, "--seed", "99999999999999999999"], "seed"),
    ([*IMG, "--batch", "0"], "Batch size"),
    ([*IMG, "--batch", "100000"], "Batch size"),
    ([*IMG, "--variation-seed", "x"], "seed"),
    ([*IMG, "--variation-strength", "nan"], "finite"),
    ([*IMG, "--variation-strength", "7"], None),
    (["gen", "image", "--prompt", "x"], "--model"),
    (["gen", "image", "--model", ""], "Choose a model first"),
    ([*IMG, "--frobnicate"], "unrecognized arguments"),
    ([*IMG, "--steps"], "expected one argument"),
    pytest.param([*IMG, "--prompt", SURROGATE, "--model", "builtin:faces", "--width", "64",
                  "--height", "64"], "UTF-8"),
    # ── studio gen image: found when the model is opened ──
    (["gen", "image", "--model", "{missing}"], "{missing}"),
    (["gen", "image", "--model", "builtin:no-such-gan"], None),
    (["gen", "image", "--model", "{file:not-a-model.txt}"], None),
    (["gen", "image", "--model", "{file:folder}"], None),
    (["gen", "image", "--model", "builtin:composer", "--width", "64", "--height", "64"], None),
    (["gen", "image", "--model", "{gpt2}", "--width", "64", "--height", "64"], None),
    # ── studio gen text ──
    (["gen", "text", "--model", "m"], "Write a prompt first"),
    ([*TXT, "--max-tokens", "0"], "Max new tokens"),
    ([*TXT, "--max-tokens", "40000"], "Max new tokens"),
    ([*TXT, "--max-tokens", "x"], "invalid int value"),
    ([*TXT, "--temperature", "-1"], "emperature"),
    ([*TXT, "--temperature", "nan"], "finite"),
    ([*TXT, "--top-p", "2"], "op-p"),
    ([*TXT, "--top-p", "-0.5"], "op-p"),
    ([*TXT, "--top-k", "-1"], "Top-k"),
    ([*TXT, "--top-k", "x"], "invalid int value"),
    ([*TXT, "--repetition-penalty", "nan"], "finite"),
    ([*TXT, "--repetition-penalty", "0"], None),
    ([*TXT, "--stop", ""], "Stop strings must be non-empty"),
    ([*TXT, "--seed", "x"], "seed"),
    ([*TXT, "--stop"], "expected at least one argument"),
    (["gen", "text", "--prompt", "hi"], "--model"),
    pytest.param(["gen", "text", "--model", "{gpt2}", "--prompt", SURROGATE,
                  "--max-tokens", "2"], "UTF-8"),
    (["gen", "text", "--model", "{gpt2}", "--prompt", LONG, "--max-tokens", "2"], "too long"),
    (["gen", "text", "--model", "{missing}", "--prompt", "hi"], "{missing}"),
    (["gen", "text", "--model", "builtin:faces", "--prompt", "hi"], None),
    (["gen", "text", "--model", "{pickled}", "--prompt", "hi"], "pytorch_model.bin"),
    (["gen", "text", "--model", "{file:not-a-model.txt}", "--prompt", "hi"], None),
    # ── studio gen music ──
    ([*MUS, "--seconds", "0"], None),
    ([*MUS, "--seconds", "100000"], None),
    ([*MUS, "--seconds", "abc"], None),
    ([*MUS, "--seconds", "nan"], "finite"),
    ([*MUS, "--temperature", "-1"], "emperature"),
    ([*MUS, "--temperature", "nan"], "finite"),
    ([*MUS, "--top-k", "-1"], "Top-k"),
    ([*MUS, "--top-k", "many"], None),
    ([*MUS, "--top-p", "2"], "op-p"),
    ([*MUS, "--guidance", "nan"], "finite"),
    ([*MUS, "--blend", "2"], "lend"),
    ([*MUS, "--blend", "0.5"], "Write a prompt to blend toward"),
    ([*MUS, "--blend", "abc"], None),
    ([*MUS, "--seed", "x"], "seed"),
    (["gen", "music", "--prompt", "x"], "--model"),
    (["gen", "music", "--model", "{missing}", "--prompt", "x", "--seconds", "1"], "{missing}"),
    (["gen", "music", "--model", "builtin:faces", "--prompt", "x", "--seconds", "1"], None),
    (["gen", "music", "--model", "{gpt2}", "--prompt", "x", "--seconds", "1"], None),
    # ── studio explore ──
    ([*WALK, "--anchors", "5"], "two anchors"),
    ([*POINT, "--anchors", "1,2", "--weights", "1"], "one weight per anchor"),
    ([*POINT, "--anchors", "1,x"], "Anchors must be a number"),
    ([*POINT, "--direction", "pc1"], "NAME=OFFSET"),
    ([*POINT, "--direction", "pc1=big"], None),
    ([*POINT, "--pad", "0.5"], "--pad needs 2 numbers"),
    ([*POINT, "--size", "100"], "multiple of 8"),
    ([*WALK, "--frames", "1"], "Frames"),
    ([*WALK, "--frames", "lots"], "invalid int value"),
    ([*WALK, "--easing", "bounce"], "Unknown easing"),
    ([*WALK, "--fps", "x"], "invalid int value"),
    ([*POINT, "--variation", "abc"], "SEED:STRENGTH"),
    ([*POINT, "--variation", "5:abc"], "SEED:STRENGTH"),
    ([*POINT, "--anchors", "1,2", "--prompts", "only one"], "one prompt per anchor"),
    ([*POINT, "--anchors", "1,2", "--weights", "0,0"], "must not all be zero"),
    ([*POINT, "--anchors", ",".join(str(i) for i in range(40))], "at most"),
    ([*POINT, "--steps", "0"], None),
    ([*POINT, "--direction", "smile=1"], "no direction 'smile'"),
    (["explore", "point", "--model", "{missing}"], "{missing}"),
    (["explore", "point", "--model", "builtin:composer"], None),
    (["explore", "walk"], "--model"),
    (["explore"], None),
    # ── studio info ──
    (["info", "{missing}"], "No such file"),
    (["info", "/dev/zero"], "not a regular file"),
    (["info", "{file:folder}"], "is a folder"),
    (["info", "{file:data.xyz}"], "not a kind of file that holds recipes"),
    (["info", "{file:plain.png}"], "holds no recipe"),
    (["info", "{file:garbage.png}"], None),
    (["info", "{file:empty.wav}"], None),
    (["info", "{file:cut.gif}"], None),
    (["info", "{file:notes.md}"], None),
    (["info"], "required"),
    # ── studio models ──
    (["models", "download", "no-such-thing"], "Unknown model 'no-such-thing'"),
    (["models", "download"], "required"),
    (["models", "frobnicate"], "invalid choice"),
    (["models", "--modality", "video"], "invalid choice"),
    # ── studio itself ──
    (["frobnicate"], "invalid choice"),
    (["--bogus"], "unrecognized arguments"),
    (["gen"], None),
    (["gen", "video"], "invalid choice"),
]


def _fill(arg: str, paths: dict[str, Path]) -> str:
    for key, value in paths.items():
        arg = arg.replace("{" + key + "}", str(value))
    return arg


def _needs(args: list[str], request: pytest.FixtureRequest, missing: Path) -> dict[str, Path]:
    text = " ".join(args)
    paths: dict[str, Path] = {"missing": missing}
    if "{gpt2}" in text:
        paths["gpt2"] = request.getfixturevalue("gpt2")
    if "{pickled}" in text:
        paths["pickled"] = request.getfixturevalue("pickled_model")
    if "{file:" in text:
        for name, path in request.getfixturevalue("files").items():
            paths[f"file:{name}"] = path
    return paths


def _with_out(args: list[str], out: Path) -> list[str]:
    """Point commands that write at the test's output folder (after the subcommand)."""
    if args[:1] == ["gen"] and len(args) > 2 and args[1] in ("image", "text", "music"):
        return [*args, "--out", str(out)]
    if args[:1] == ["explore"] and len(args) > 1 and args[1] in ("walk", "point"):
        return [*args, "--out", str(out)]
    return args


def _left_in(out: Path) -> list[Path]:
    return sorted(out.rglob("*")) if out.exists() else []


@pytest.mark.parametrize(("args", "needle"), CASES)
def test_bad_input(args: list[str], needle: str | None, tmp_path: Path,
                   request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    paths = _needs(args, request, tmp_path / "no-such-model")
    argv = _with_out([_fill(a, paths) for a in args], out)
    capsys.readouterr()  # what building a fixture printed is not the command's
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: "), captured.err
    if needle is not None:
        assert _fill(needle, paths) in lines[0]
    assert code == EXIT_BAD_INPUT
    assert _left_in(out) == []
    assert not any(advice in captured.err for advice in TORCH_ADVICE)


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 80


# ── a few cases across the process boundary ──

ROOT = Path(__file__).resolve().parents[2]


def _studio(args: list[bytes | str], tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("STUDIO_HUB_OFFLINE_DEFAULT", None)
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          timeout=300, cwd=tmp_path, env=env)


def _one_clean_line(proc: subprocess.CompletedProcess[bytes], out: Path) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("studio: "), err
    assert proc.returncode == EXIT_BAD_INPUT
    assert _left_in(out) == []
    return err


def test_a_long_prompt_on_a_real_model_is_one_line_and_no_library_noise(
        gpt2: Path, tmp_path: Path) -> None:
    """stderr is a pipe here: no progress bars, no transformers warnings, no tracebacks."""
    out = tmp_path / "out"
    proc = _studio(["gen", "text", "--model", str(gpt2), "--prompt", LONG, "--max-tokens",
                    "2", "--quiet", "--out", str(out)], tmp_path)
    assert "too long" in _one_clean_line(proc, out)


def test_a_pickled_checkpoint_torch_refuses_is_one_sentence_naming_it(
        pickled_model: Path, tmp_path: Path, studio_home: Path) -> None:
    """Pickles allowed in Settings, yet this one holds code: torch's weights_only refuses
    it; the person reads which file and why, never "set weights_only=False"."""
    from studio.core.settings import Settings

    settings = Settings.load()
    settings.allow_pickle = True
    settings.save()
    out = tmp_path / "out"
    proc = _studio(["gen", "text", "--model", str(pickled_model), "--prompt", "hi",
                    "--quiet", "--out", str(out)], tmp_path)
    err = _one_clean_line(proc, out)
    assert err.startswith("studio: Refused to load pytorch_model.bin from ")
    assert "would run code while loading (print)" in err
    assert not any(advice in err for advice in TORCH_ADVICE)


def test_bytes_that_are_not_utf8_in_a_prompt(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _studio([b"gen", b"image", b"--model", b"builtin:faces", b"--width", b"64",
                    b"--height", b"64", b"--prompt", b"caf\xe9 \xff", b"--out",
                    str(out).encode()], tmp_path)
    _one_clean_line(proc, out)
