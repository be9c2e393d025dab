"""`studio gen music --melody FILE` with a tiny real MusicGen-Melody; a bad reference is
one sentence and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studio.cli import EXIT_BAD_INPUT, main
from studio.core.formats.audio import write_wav
from tests.tiny_musicgen_melody import CHROMA, cached_tiny_musicgen_melody

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py


def test_gen_music_follows_a_melody_file(tmp_path_factory, tmp_path, capsys):
    model = cached_tiny_musicgen_melody(tmp_path_factory)
    rate = CHROMA["sampling_rate"]
    tone = tmp_path / "e.wav"
    with open(tone, "wb") as f:
        t = np.arange(rate) / rate
        write_wav(f, (0.5 * np.sin(2 * np.pi * 329.63 * t)).astype(np.float32)[None], rate)
    out = tmp_path / "out"
    code = main(["gen", "music", "--model", str(model), "--prompt", "a calm piano",
                 "--seconds", "1", "--seed", "4", "--melody", str(tone), "--out", str(out),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    wav = Path(captured.out.split()[0])
    assert main(["info", str(wav)]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    kept = Path(request["melody"])
    assert kept.parent.name == "inputs" and kept.read_bytes() == tone.read_bytes()
    assert main(["gen", "music", "--model", str(model), "--prompt", "x", "--seconds", "1",
                 "--melody", str(tmp_path / "none.wav"), "--out", str(out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "melody reference" in err and "does not exist" in err and "Traceback" not in err
