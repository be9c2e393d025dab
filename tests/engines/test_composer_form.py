"""The composer's form, cadences, SATB chorales, explicit controls, motifs, extension, stems
and soundfonts (issue 14). Grammar and plan tests use a tiny untrained network; the
musical measurements use the committed weights (skipped where they are missing)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.composer_prompt import understand
from studio.core.errors import ModelError, RequestError
from studio.core.midi import MARKER, read_midi
from studio.core.requests import MusicRequest
from studio.core.settings import Settings
from studio.engines.base import Events, LoadSpec
from studio.engines.composer import form, render, voiceleading
from studio.engines.composer.compose import SamplingParams, compose
from studio.engines.composer.model import ComposerConfig, ComposerLM, save_pretrained
from studio.engines.composer.tokens import Note, Piece, Vocab, bar_ticks

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def music(prompt: str = "", seed: int = 5, duration: float = 12.0, **kw) -> MusicRequest:
    return MusicRequest(model="builtin:composer", prompt=prompt, seed=seed, duration=duration,
                        **kw)


def load_engine():
    from studio.engines.composer.engine import ComposerEngine

    return ComposerEngine.load(LoadSpec("builtin:composer", "cpu", "float32"), Settings(),
                               Events())


@pytest.fixture
def tiny_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    torch.manual_seed(0)
    vocab = Vocab()
    model = ComposerLM(ComposerConfig(len(vocab), d_model=32, n_layer=2, n_head=2, d_ff=64,
                                      max_len=96))
    save_pretrained(tmp_path / "models" / "composer", model, vocab.tokens)
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture(scope="module")
def trained():
    if not (REPO_MODELS / "composer" / "composer.safetensors").is_file():
        pytest.skip("the composer has not been trained in this checkout")
    return load_engine()


def bars_of(track, qpm: float, ts: str) -> dict[int, list[tuple[float, int]]]:
    """MIDI notes by bar: (onset within the bar in quarters, pitch)."""
    bar_q = bar_ticks(ts) / 12
    out: dict[int, list[tuple[float, int]]] = {}
    for n in track.notes:
        q = round(n.start * qpm / 60, 2)  # MIDI ticks round onsets a little
        bar = int(q // bar_q + 1e-6)
        out.setdefault(bar, []).append((round(q - bar * bar_q, 2), n.pitch))
    return {b: sorted(v) for b, v in out.items()}


# ---------------------------------------------------------------- the plan
def test_core_controls_list_what_the_vocabulary_has() -> None:
    from studio.core import music
    from studio.engines.composer import tokens

    assert music.METERS == tokens.TIME_SIGNATURES and music.STYLES == tokens.STYLES


def test_aabb_plan_repeats_a_and_b_with_second_endings() -> None:
    plan = form.plan("AABB", 16, "6/8")
    assert plan.letters == ("A", "A", "B", "B") and plan.section_length == 4
    kinds = [(b.kind, b.source, b.cadence) for b in plan.bars]
    assert kinds[3] == ("new", None, form.HALF)  # A ends on the dominant…
    assert kinds[4:8] == [("copy", 0, None), ("copy", 1, None), ("copy", 2, None),
                          ("vary", 3, form.AUTHENTIC)]  # …its repeat on the tonic
    assert kinds[15] == ("vary", 11, form.FINAL)
    assert sum(b.cadence is not None for b in plan.bars) == 4
    aaba = form.plan("AABA", 8, "4/4")
    assert [b.source for b in aaba.bars[6:]] == [2, 3]  # the last A repeats the second
    assert form.plan("phrases", 8, "4/4").letters == ("P1", "P2", "P3", "P4")
    assert form.bar_multiple("AABB", "6/8") == 4 and form.bar_multiple("through", "4/4") == 1


def test_cadence_constraint_holds_on_the_last_beat() -> None:
    """Even an untrained network sounds only cadence tones on a phrase's last beat."""
    torch.manual_seed(0)
    vocab = Vocab()
    model = ComposerLM(ComposerConfig(len(vocab), d_model=32, n_layer=1, n_head=2, d_ff=64,
                                      max_len=96))
    ts = "4/4"
    length, beat = bar_ticks(ts), 12
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed)
        cad = {1: form.cadence_pcs(form.HALF, "major"), 3: form.cadence_pcs(form.FINAL, "major")}
        notes = compose(model, vocab, Piece("fiddle", "reel", "major", ts), 4,
                        SamplingParams(temperature=1.5, max_chord=2), gen, cadences=cad)
        for bar, pcs in cad.items():
            last = bar * length + length - beat
            sounding = [n for n in notes if n.bar * length + n.pos + n.dur > last
                        and n.bar * length + n.pos < (bar + 1) * length]
            assert sounding and all(n.pitch % 12 in pcs for n in sounding), (seed, bar)


def test_a_primer_is_continued_after_its_bars() -> None:
    torch.manual_seed(0)
    vocab = Vocab()
    model = ComposerLM(ComposerConfig(len(vocab), d_model=32, n_layer=1, n_head=2, d_ff=64,
                                      max_len=48))
    primer = [Note(b, p, 72 - p // 12, 12) for b in range(6) for p in (0, 12, 24, 36)]
    gen = torch.Generator().manual_seed(1)
    seen: list[int] = []
    notes = compose(model, vocab, Piece("fiddle", "none", "major", "4/4"), 3,
                    SamplingParams(), gen, on_bar=lambda i, _n: seen.append(i),
                    primer=primer, primer_bars=6)
    assert seen == [6, 7, 8] and notes and all(6 <= n.bar < 9 for n in notes)


# ---------------------------------------------------------------- the checker
def test_voice_leading_checker_counts_each_fault() -> None:
    def chord(t: float, *pitches: int) -> list[tuple[float, float, int]]:
        return [(t, t + 1, p) for p in pitches]

    good = list(zip(chord(0, 72, 67, 64, 48), chord(1, 71, 67, 62, 55),
                    chord(2, 72, 67, 64, 48), strict=True))
    voices = [list(v) for v in good]
    assert voiceleading.check(voices, 0, "major") == []
    # G–D to A–E over C: parallel fifths soprano–tenor and soprano–bass, octaves tenor–bass
    par = [[(0, 1, 67), (1, 2, 69)], [(0, 1, 64), (1, 2, 65)], [(0, 1, 60), (1, 2, 62)],
           [(0, 1, 48), (1, 2, 50)]]
    c = voiceleading.counts(voiceleading.check(par, 0, "major"))
    assert c["parallel_fifths"] == 2 and c["parallel_octaves"] == 1
    crossed = [[(0, 1, 64)], [(0, 1, 67)], [(0, 1, 60)], [(0, 1, 48)]]
    assert voiceleading.counts(voiceleading.check(crossed, 0, "major"))["crossing"] == 1
    no_third = [[(0, 1, 72)], [(0, 1, 67)], [(0, 1, 60)], [(0, 1, 48)]]
    assert voiceleading.counts(voiceleading.check(no_third, 0, "major"))["final_no_third"] == 1
    # F and F♯ together (in C), and a soprano far too high
    clash = [[(0, 1, 90), (1, 2, 78)], [(0, 1, 65), (1, 2, 64)], [(0, 1, 60), (1, 2, 60)],
             [(0, 1, 48), (1, 2, 48)]]
    c = voiceleading.counts(voiceleading.check(clash, 0, "major"))
    assert c["cross_relation"] == 1 and c["range"] == 1


# ---------------------------------------------------------------- the engine (tiny)
def test_form_and_understood_controls_are_in_the_result(tiny_models: Path) -> None:
    engine = load_engine()
    result = engine.generate(music("reel", duration=10, key="D minor", meter="6/8", bpm=96,
                                   form="AABB", instruments="violin,guitar"), Events())
    info = result.info
    assert (info["key"], info["time_signature"], info["bpm"], info["form"]) == (
        "D minor", "6/8", 96.0, "AABB")
    assert info["instruments"] == ["violin", "nylon guitar"]
    assert info["understood"].startswith("D minor, 6/8, 96 bpm, form AABB")
    assert info["repeat_bars"] > 0 and info["cadences"] == 4
    data = read_midi(result.extras[".mid"])
    assert data.time_signature == "6/8" and data.key == (2, "minor")
    assert data.tempo_qpm == pytest.approx(96 * 1.5, rel=1e-5)  # dotted-quarter beats
    assert data.marker.startswith(MARKER) and data.marker_fields()["form"] == "AABB"
    assert [t.program for t in data.tracks] == [40, 24]


def test_chorale_is_four_tracks_in_range(tiny_models: Path) -> None:
    engine = load_engine()
    result = engine.generate(music("bach chorale in G minor", duration=12), Events())
    data = read_midi(result.extras[".mid"])
    assert [t.name for t in data.tracks] == ["soprano", "alto", "tenor", "bass"]
    assert all(t.notes for t in data.tracks)
    for track in data.tracks:
        lo, hi = voiceleading.RANGES[track.name]
        assert all(lo <= n.pitch <= hi for n in track.notes), track.name
    assert result.info["voice_leading"]["range"] == 0
    assert result.info["form"] == "phrases"


def test_bad_controls_are_one_sentence_before_any_work() -> None:
    for kw, needle in ((dict(key="H minor"), "Unsupported key"),
                       (dict(meter="7/8"), "Unsupported metre"),
                       (dict(bpm=5.0), "out of range"),
                       (dict(bpm=400.0), "Tempo must be between"),
                       (dict(form="ABCDE"), "Unknown form"),
                       (dict(style="polka"), "Unknown style"),
                       (dict(instruments="violin,kazoo"), "Unknown instrument"),
                       (dict(soundfont="nope"), "No soundfont"),
                       (dict(motif="/no/such.mid"), "does not exist"),
                       (dict(extend_from="/no/such.wav"), "does not exist")):
        with pytest.raises(RequestError, match=needle) as err:
            music(**kw).validate()
        assert "\n" not in str(err.value)


def test_a_motif_without_notes_and_a_non_studio_piece_are_refused(tiny_models: Path,
                                                                  tmp_path: Path) -> None:
    import pretty_midi

    empty = tmp_path / "empty.mid"
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    buf = io.BytesIO()
    pm.write(buf)
    empty.write_bytes(buf.getvalue())
    engine = load_engine()
    with pytest.raises(RequestError, match="has no notes"):
        engine.generate(music("air", motif=str(empty)), Events())
    with pytest.raises(RequestError, match="not a composer piece from Studio"):
        engine.generate(music(extend_from=str(empty)), Events())  # MIDI with no marker
    lone = tmp_path / "lone.wav"
    lone.write_bytes(b"RIFF")
    with pytest.raises(RequestError, match=r"there is no lone\.mid beside it"):
        engine.generate(music(extend_from=str(lone)), Events())


def test_a_soundfont_from_models_soundfonts_and_a_broken_one(tiny_models: Path) -> None:
    folder = tiny_models / "soundfonts"
    folder.mkdir()
    shutil.copy(render.bundled_soundfont(), folder / "small.sf2")
    (folder / "broken.sf2").write_bytes(b"RIFF\0\0\0\0sfbk" + b"\0" * 64)
    engine = load_engine()
    result = engine.generate(music("waltz", duration=3, soundfont="small"), Events())
    assert result.info["soundfont"] == "small.sf2"
    music(soundfont="broken.sf2").validate()  # it exists: loading is what fails
    with pytest.raises(ModelError, match="could not be loaded") as err:
        engine.generate(music("waltz", duration=3, soundfont="broken.sf2"), Events())
    assert "\n" not in str(err.value)


def test_stems_are_a_wav_per_track_that_add_up_to_the_mix(tiny_models: Path) -> None:
    from studio.core.formats.audio import _decode_wav

    engine = load_engine()
    result = engine.generate(music("jig with guitar", duration=4, stems=True,
                                   instruments="violin,guitar"), Events())
    stems = sorted(k for k in result.extras if k.endswith(".wav"))
    assert stems == [".1-violin.wav", ".2-nylon-guitar.wav"]
    audio = [_decode_wav(result.extras[k], k)[0] for k in stems]
    assert all(a.shape == result.audio.shape and np.abs(a).max() > 0.01 for a in audio)
    mix = sum(audio)
    loud = np.abs(result.audio) < 0.7  # below the soft limiter's knee
    assert np.abs(mix[loud] - result.audio[loud]).max() < 0.02


# ---------------------------------------------------------------- measured on the weights
def test_trained_aabb_repeats_its_bars_and_ends_on_cadences(trained) -> None:
    result = trained.generate(music("lively irish jig in D major", seed=2, duration=30,
                                    form="AABB"), Events())
    info = result.info
    plan = form.plan("AABB", info["bars"], "6/8")
    data = read_midi(result.extras[".mid"])
    bars = bars_of(data.tracks[0], data.tempo_qpm, "6/8")
    copies = [b for b in plan.bars if b.kind == "copy"]
    assert copies and all(bars.get(b.index) == bars.get(b.source) for b in copies)
    assert info["repeated_exactly"] == len(copies)
    assert info["cadence_hits"] == info["cadences"] == 4
    last = max(n.end for n in data.tracks[0].notes)
    final = [n.pitch % 12 for t in data.tracks for n in t.notes if n.end >= last - 0.2]
    assert final and all(pc in (2, 6, 9) for pc in final)  # a D major chord
    assert 2 in final  # with its root


def test_trained_chorales_have_few_voice_leading_faults(trained) -> None:
    total = dict.fromkeys(voiceleading.KINDS, 0)
    chords = 0
    for seed in range(4):
        for prompt in ("bach chorale in D minor", "hymn in G major"):
            result = trained.generate(music(prompt, seed=seed, duration=20), Events())
            data = read_midi(result.extras[".mid"])
            spans = [[(n.start, n.end, n.pitch) for n in t.notes] for t in data.tracks]
            tonic, mode = data.key
            counts = voiceleading.counts(voiceleading.check(spans, tonic, mode))
            assert counts == result.info["voice_leading"]
            for k, v in counts.items():
                total[k] += v
            chords += len(voiceleading.sonorities(spans))
    assert total["parallel_fifths"] + total["parallel_octaves"] <= 2, total
    assert total["final_no_third"] == 0 and total["range"] == 0 and total["cross_relation"] == 0
    assert sum(total.values()) <= 0.03 * chords, (total, chords)


def test_trained_key_metre_and_tempo_are_what_was_asked(trained) -> None:
    from music21 import converter

    result = trained.generate(music("folk tune", seed=3, duration=20, key="E minor",
                                    meter="3/4", bpm=90), Events())
    data = read_midi(result.extras[".mid"])
    assert data.time_signature == "3/4" and data.tempo_qpm == pytest.approx(90, rel=1e-5)
    key = converter.parseData(result.extras[".mid"], format="midi").analyze("key")
    assert (key.tonic.name, key.mode) == ("E", "minor")


def test_tempo_and_instrument_words_mean_what_they_say() -> None:
    slow = understand(music("slow waltz", seed=1))[1]
    assert slow.qpm / 1.0 <= 76  # 3/4: the beat is a quarter
    fast = understand(music("fast strings", seed=1))[1]
    assert fast.style != "chorale" and fast.program == 48 and fast.accomp_program == 48
    for seed in range(8):  # strings never fall back on a hymn, whatever the seed
        assert understand(music("strings", seed=seed))[1].style in ("air", "fiddle")


def test_trained_extension_keeps_the_piece_and_continues_it(trained, tmp_path) -> None:
    from studio.engines.runner import Runner

    runner = Runner(Settings(output_dir=str(tmp_path)))
    first = runner.generate(music("lively irish jig in G", seed=4, duration=8), Events())
    wav = next(p for p in runner.save(first, None) if p.suffix == ".wav")
    longer = trained.generate(music(seed=9, duration=6, extend_from=str(wav)), Events())
    a, b = read_midi(wav.with_suffix(".mid")), read_midi(longer.extras[".mid"])
    assert longer.audio.shape[1] == round(14 * render.SAMPLE_RATE)
    for old, new in zip(a.tracks, b.tracks, strict=True):
        kept = [n for n in new.notes if n.start < a.duration - 1e-6]
        assert kept == old.notes  # the original, note for note
        assert len(new.notes) > len(old.notes)  # and more
    assert longer.info["extended"]["original_seconds"] == pytest.approx(8.0)
    assert (longer.info["key"], longer.info["time_signature"]) == (first.info["key"], "6/8")


def test_trained_motif_opens_the_piece(trained, tmp_path) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(73)
    for i, p in enumerate((67, 69, 71, 72, 74, 72, 71, 69)):  # G A B C D C B A in G
        inst.notes.append(pretty_midi.Note(80, p, i * 0.5, i * 0.5 + 0.5))
    pm.instruments.append(inst)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    path = tmp_path / "motif.mid"
    buf = io.BytesIO()
    pm.write(buf)
    path.write_bytes(buf.getvalue())
    result = trained.generate(music("air on flute", seed=1, duration=20, key="G major",
                                    motif=str(path)), Events())
    melody = read_midi(result.extras[".mid"]).tracks[0].notes
    assert [n.pitch for n in melody[:8]] == [67, 69, 71, 72, 74, 72, 71, 69]
    assert result.info["motif"]["bars"] == 2 and result.info["bpm"] == pytest.approx(120)
    assert len(melody) > 12
