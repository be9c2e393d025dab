"""`studio gen music` with a tiny real MusicGen; `studio info` reads the recipe back."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, main

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


def test_gen_music_prints_the_written_wav_and_info_reads_it(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["gen", "music", "--model", str(tiny), "--prompt", "a calm piano",
                 "--seconds", "1.5", "--seed", "77", "--temperature", "0.9",
                 "--guidance", "2", "--top-k", "40", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = [Path(line) for line in captured.out.splitlines()]
    assert len(paths) == 1 and paths[0].suffix == ".wav" and paths[0].is_file()
    assert paths[0].is_relative_to(out)
    with wave.open(str(paths[0])) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(1.5)
    assert main(["info", str(paths[0])]) == 0
    recipe = json.loads(capsys.readouterr().out)
    assert recipe["source"] == "studio" and recipe["modality"] == "music"
    request = recipe["request"]
    assert (request["kind"], request["model"], request["prompt"]) == (
        "music", str(tiny), "a calm piano")
    assert (request["seed"], request["duration"], request["temperature"], request["top_k"],
            request["guidance"]) == (77, 1.5, 0.9, 40, 2.0)
    # the same command again gives the same samples under a new name
    assert main(["gen", "music", "--model", str(tiny), "--prompt", "a calm piano",
                 "--seconds", "1.5", "--seed", "77", "--temperature", "0.9",
                 "--guidance", "2", "--top-k", "40", "--out", str(out), "--quiet"]) == 0
    again = Path(capsys.readouterr().out.strip())
    assert again != paths[0]
    with wave.open(str(paths[0])) as a, wave.open(str(again)) as b:
        assert a.readframes(a.getnframes()) == b.readframes(b.getnframes())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seconds", "0"], "Duration"),
        (["--seconds", "forever"], "Duration"),
        (["--temperature", "-1"], "Temperature"),
        (["--top-k", "1.5"], "Top-k"),
        (["--top-p", "2"], "Top-p"),
        (["--guidance", "inf"], "finite"),
        (["--seed", "many"], "seed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    code = main(["gen", "music", "--model", "m", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and err.startswith("studio: ") and needle in err
    assert not any(tmp_path.rglob("*.wav"))


def test_a_missing_model_is_one_line_naming_where_it_looked(capsys, tmp_path):
    missing = tmp_path / "no-such-musicgen"
    code = main(["gen", "music", "--model", str(missing), "--seconds", "1",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_bad_input_fails_before_importing_torch(tmp_path):
    code = (
        "import sys; from studio.cli import main; "
        f"rc = main(['gen', 'music', '--model', 'm', '--seconds', '0', '--out', "
        f"{str(tmp_path)!r}]); print('torch' in sys.modules, rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["False", "2"]


def test_gen_music_blend_reaches_the_recipe(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["gen", "music", "--model", str(tiny), "--prompt", "a calm piano",
                 "--blend-prompt", "fast rock guitar", "--blend", "0.5",
                 "--seconds", "1", "--seed", "3", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    path = Path(captured.out.strip())
    assert main(["info", str(path)]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert (request["prompt"], request["blend_prompt"], request["blend"]) == (
        "a calm piano", "fast rock guitar", 0.5)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--blend", "0.5"], "blend toward"),
        (["--blend-prompt", "jazz", "--blend", "2"], "Blend must be between 0 and 1"),
        (["--blend-prompt", "jazz", "--blend", "half"], "Blend"),
    ],
)
def test_bad_blend_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    code = main(["gen", "music", "--model", "m", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and needle in err


COMPOSER_FLAGS = ["--key", "D minor", "--meter", "6/8", "--bpm", "96", "--form", "AABB",
                  "--instruments", "violin,guitar"]


def test_composer_flags_reach_the_recipe_and_what_it_understood_is_printed(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["gen", "music", "--model", "builtin:composer", "--prompt", "a reel",
                 *COMPOSER_FLAGS, "--seconds", "6", "--seed", "4", "--stems",
                 "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.err.splitlines()
    understood = "D minor, 6/8, 96 bpm, form AABB, fiddle reel, violin + guitar"
    assert lines == [f"composer: asked for {understood}", f"composer: played {understood}"]
    paths = [Path(line) for line in captured.out.splitlines()]
    names = sorted(p.name.split(".", 1)[1] for p in paths)
    assert names == ["1-violin.wav", "2-nylon-guitar.wav", "mid", "wav"]
    wav = next(p for p in paths if p.name.endswith("-a-reel.wav"))
    assert main(["info", str(wav)]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert (request["key"], request["meter"], request["bpm"], request["form"],
            request["instruments"], request["stems"]) == (
        "D minor", "6/8", 96.0, "AABB", "violin,guitar", True)
    # extend it by 3 seconds: the recipe names the piece it continues
    code = main(["gen", "music", "--model", "builtin:composer", "--extend", str(wav),
                 "--seconds", "3", "--seed", "5", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    longer = next(Path(p) for p in captured.out.splitlines() if p.endswith(".wav"))
    with wave.open(str(longer)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(9.0)
    assert captured.err.startswith("composer: played D minor, 6/8, 96 bpm")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--key", "H major"], "Unsupported key"),
        (["--meter", "7/8"], "Unsupported metre"),
        (["--bpm", "10"], "out of range"),
        (["--bpm", "fast"], "must be a number"),
        (["--form", "ABACABA"], "Unknown form"),
        (["--instruments", "kazoo"], "Unknown instrument"),
        (["--soundfont", "missing"], "No soundfont"),
        (["--motif", "nowhere.mid"], "does not exist"),
        (["--extend", "nowhere.wav"], "does not exist"),
    ],
)
def test_bad_composer_controls_are_one_line_and_nothing_is_written(args, needle, capsys,
                                                                   tmp_path):
    code = main(["gen", "music", "--model", "builtin:composer", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and needle in err
    assert not any(tmp_path.rglob("*.*"))
