"""The history index: added after the file exists, searchable in any language, thread-safe."""

from __future__ import annotations

import logging
import sqlite3
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core import history as history_module
from studio.core.errors import RecipeError, StudioError
from studio.core.formats.png import save_images
from studio.core.history import History, HistoryItem
from studio.core.requests import ImageRequest, MusicRequest, TextRequest
from studio.core.results import Result


def _image_result(prompt: str, seed: int = 1, model: str = "/models/sd15.safetensors",
                  n: int = 1) -> Result:
    request = ImageRequest(model=model, prompt=prompt, seed=seed, width=64, height=64,
                           batch_size=n)
    return Result(request=request, modality="image",
                  images=[np.full((48, 32, 3), 90, np.uint8)] * n)


def _save(out: Path, result: Result) -> list[Path]:
    return save_images(result, out)


@pytest.fixture(params=["fts", "substring"])
def hist(request: pytest.FixtureRequest, tmp_path: Path):
    store = History(tmp_path / "history.sqlite", fts=None if request.param == "fts" else False)
    if request.param == "fts":
        assert store.fts, "this SQLite should have the FTS5 trigram tokenizer"
    yield store
    store.close()


def test_add_only_after_the_file_exists(hist: History, tmp_path: Path) -> None:
    result = _image_result("fox")
    with pytest.raises(StudioError, match=r"^Cannot index .*: the file does not exist\.$"):
        hist.add_output(tmp_path / "not-yet.png", result)
    assert len(hist) == 0


def test_add_and_get_keeps_each_images_own_seed(hist: History, tmp_path: Path) -> None:
    result = _image_result("a red fox", seed=500, n=2)
    paths = _save(tmp_path / "out", result)
    ids = [hist.add_output(p, result) for p in paths]
    items = [hist.get(i) for i in ids]
    assert all(isinstance(i, HistoryItem) for i in items)
    assert [i.seed for i in items] == [500, 501]
    first = items[0]
    assert first.path == paths[0].resolve() and first.exists
    assert (first.modality, first.prompt, first.model) == ("image", "a red fox",
                                                            "/models/sd15.safetensors")
    assert (first.width, first.height, first.duration) == (32, 48, None)
    assert first.rating == 0 and first.source == "studio"
    assert first.to_request() == result.request.replace(seed=500, batch_size=1)
    assert first.created_at.year >= 2024
    assert hist.get(9999) is None


def test_readding_the_same_path_keeps_id_and_rating(hist: History, tmp_path: Path) -> None:
    result = _image_result("owl")
    [path] = _save(tmp_path, result)
    first = hist.add_output(path, result)
    assert hist.set_rating(first, 4)
    assert hist.add_output(path, result) == first
    assert hist.get(first).rating == 4 and len(hist) == 1
    assert hist.find_path(path).id == first


def test_search_any_language_case_insensitive(hist: History, tmp_path: Path) -> None:
    prompts = {
        "Ein Fuchs im SCHNEE": "/m/Realistic-Vision.safetensors",
        "一只红色的狐狸在雪地里": "/m/sd15.safetensors",
        "ΣΊΣΥΦΟΣ rolling a stone": "/m/sd15.safetensors",
        "ÄPFEL und Birnen": "builtin:faces",
        "a quiet harbour": "/m/sd15.safetensors",
    }
    for i, (prompt, model) in enumerate(prompts.items()):
        result = _image_result(prompt, seed=i, model=model)
        hist.add_output(_save(tmp_path, result)[0], result)

    def found(text: str) -> list[str]:
        return [item.prompt for item in hist.search(text)]

    assert found("schnee") == ["Ein Fuchs im SCHNEE"]
    assert found("SCHN") == ["Ein Fuchs im SCHNEE"]
    assert found("狐狸") == ["一只红色的狐狸在雪地里"]  # two characters: substring path
    assert found("红色的狐狸") == ["一只红色的狐狸在雪地里"]  # trigram path
    assert found("σίσυφος") == ["ΣΊΣΥΦΟΣ rolling a stone"]
    assert found("äpfel") == ["ÄPFEL und Birnen"]
    assert found("realistic-vision") == ["Ein Fuchs im SCHNEE"]  # model names too
    assert found("faces") == ["ÄPFEL und Birnen"]
    assert found("fuchs schnee") == ["Ein Fuchs im SCHNEE"]  # every word must match
    assert found("fuchs harbour") == []
    assert found('"quoted" AND OR *') == []  # FTS syntax in user text is just text
    assert len(found("")) == 5
    assert hist.count("sd15") == 3


def test_search_filters_order_and_paging(hist: History, tmp_path: Path) -> None:
    ids = []
    for i in range(5):
        result = _image_result(f"cat number {i}", seed=i)
        ids.append(hist.add_output(_save(tmp_path, result)[0], result))
    text_file = tmp_path / "story.md"
    text_file.write_text("# A cat story")
    text_result = Result(request=TextRequest(model="builtin:smollm2", prompt="a cat story"),
                         modality="text", text="Once upon a time")
    text_id = hist.add_output(text_file, text_result)
    newest_first = [i.id for i in hist.recent()]
    assert newest_first == [text_id, *reversed(ids)]
    assert [i.id for i in hist.search("cat", modality="image", limit=2)] == [ids[4], ids[3]]
    assert [i.id for i in hist.search("cat", modality="image", limit=2, offset=2)] == [
        ids[2], ids[1]]
    assert [i.modality for i in hist.recent(modality="text")] == ["text"]
    hist.set_rating(ids[1], 5)
    hist.set_rating(ids[2], 3)
    assert [i.id for i in hist.search(min_rating=4)] == [ids[1]]
    assert hist.count(modality="image") == 5


def test_ratings_are_validated(hist: History, tmp_path: Path) -> None:
    result = _image_result("moth")
    item = hist.add_output(_save(tmp_path, result)[0], result)
    for bad in (6, -1, True, 2.5, "3"):
        with pytest.raises(StudioError, match="A rating is a whole number from 0 to 5"):
            hist.set_rating(item, bad)  # type: ignore[arg-type]
    assert hist.set_rating(item, 5) and hist.get(item).rating == 5
    assert hist.set_rating(item, 0) and hist.get(item).rating == 0
    assert hist.set_rating(12345, 3) is False


def test_missing_files_are_handled_not_fatal(hist: History, tmp_path: Path) -> None:
    result = _image_result("ghost")
    keep, lose = _save(tmp_path, result) + _save(tmp_path, result)
    keep_id, lose_id = hist.add_output(keep, result), hist.add_output(lose, result)
    lose.unlink()
    items = {i.id: i for i in hist.recent()}
    assert items[keep_id].exists and not items[lose_id].exists
    assert hist.prune_missing() == 1
    assert [i.id for i in hist.recent()] == [keep_id]


def test_remove_and_delete_file(hist: History, tmp_path: Path) -> None:
    result = _image_result("to delete")
    a, b = _save(tmp_path, result) + _save(tmp_path, result)
    id_a, id_b = hist.add_output(a, result), hist.add_output(b, result)
    assert hist.remove(id_a) and a.exists()  # forgetting keeps the file
    assert hist.remove(id_b, delete_file=True) and not b.exists()
    assert hist.remove(id_a) is False
    assert len(hist) == 0


def test_companion_files_join_their_main_entry(hist: History, tmp_path: Path) -> None:
    wav = tmp_path / "00001-3-calm.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 16000)
    mid = wav.with_suffix(".mid")
    mid.write_bytes(b"MThd")
    result = Result(request=MusicRequest(model="builtin:composer", prompt="calm", seed=3),
                    modality="music", audio=np.zeros((1, 16000), np.float32), sample_rate=8000)
    wav_id = hist.add_output(wav, result)
    assert hist.add_output(mid, result) == wav_id
    [item] = hist.recent()
    assert item.duration == pytest.approx(2.0) and item.seed == 3 and item.modality == "music"


def test_a_walk_is_one_entry_with_its_mp4_and_frames(hist: History, tmp_path: Path) -> None:
    gif = tmp_path / "00003-9-faces-walk.gif"
    gif.write_bytes(b"GIF89a")
    mp4 = gif.with_suffix(".mp4")
    mp4.write_bytes(b"\0\0\0\x18ftyp")
    frames = tmp_path / "00003-9-faces-walk-frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"{i + 1:04d}.png").write_bytes(b"png")
    result = Result(request=ImageRequest(model="builtin:faces", seed=9), modality="explore",
                    images=[np.zeros((64, 64, 3), np.uint8)] * 3)
    walk = hist.add_output(gif, result)
    others = [hist.add_output(p, result) for p in [mp4, *sorted(frames.iterdir())]]
    assert others == [walk] * 4
    assert [(i.modality, i.path.name) for i in hist.recent()] == [("explore", gif.name)]
    assert hist.rescan(tmp_path) == 0  # frames folders are not scanned as outputs


def test_import_file_and_rescan(hist: History, tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    ours = _save(out, _image_result("imported heron", seed=77))[0]
    a1111 = out / "other" / "a1111.png"
    a1111.parent.mkdir(parents=True)
    info = PngInfo()
    info.add_text("parameters", "a crane\nSteps: 20, Sampler: Euler, Seed: 5, Size: 64x64, "
                                "Model: anything-v3")
    Image.new("RGB", (64, 64)).save(a1111, pnginfo=info)
    plain = out / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    (out / "notes.txt.bak").write_text("ignored")

    item = hist.get(hist.import_file(ours))
    assert item.seed == 77 and item.prompt == "imported heron" and item.source == "studio"
    with pytest.raises(RecipeError, match="holds no recipe"):
        hist.import_file(plain)
    assert hist.rescan(out) == 1  # the A1111 file; ours is known, the plain one has no recipe
    found = hist.search("crane")
    assert [(i.source, i.model, i.seed, i.width) for i in found] == [
        ("a1111", "anything-v3", 5, 64)]
    assert hist.rescan(out) == 0


def test_thread_safety_with_concurrent_writers_and_readers(hist: History, tmp_path: Path) -> None:
    result = _image_result("busy bees", n=1)
    files = []
    for worker in range(6):
        for i in range(15):
            path = tmp_path / f"w{worker}-{i}.png"
            path.write_bytes(b"x")  # add_output only needs the file to exist
            files.append((worker, path))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(worker: int) -> None:
        try:
            start.wait()
            for w, path in files:
                if w == worker:
                    row = hist.add_output(path, result)
                    hist.set_rating(row, worker % 6)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            start.wait()
            for _ in range(30):
                hist.search("bees", limit=50)
                hist.count()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert hist.count("bees") == 90
    assert len({i.path for i in hist.search(limit=1000)}) == 90


def test_two_connections_share_the_file(tmp_path: Path) -> None:
    """The GUI and the CLI may have the index open at once (WAL)."""
    db = tmp_path / "h.sqlite"
    gui, cli = History(db), History(db)
    try:
        result = _image_result("shared")
        [path] = _save(tmp_path, result)
        row = cli.add_output(path, result)
        assert [i.id for i in gui.search("shared")] == [row]
        mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        gui.close()
        cli.close()


def test_index_built_without_fts_is_rebuilt_when_fts_is_back(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    plain = History(db, fts=False)
    result = _image_result("lighthouse keeper")
    plain.add_output(_save(tmp_path, result)[0], result)
    plain.close()
    with History(db) as full:
        assert full.fts
        assert [i.prompt for i in full.search("lighthouse")] == ["lighthouse keeper"]
        result2 = _image_result("lighthouse two")
        full.add_output(_save(tmp_path, result2)[0], result2)
    with History(db, fts=False) as again:  # triggers dropped, rows still added
        result3 = _image_result("lighthouse three")
        again.add_output(_save(tmp_path, result3)[0], result3)
    with History(db) as full:
        assert sorted(i.prompt for i in full.search("lighthouse")) == [
            "lighthouse keeper", "lighthouse three", "lighthouse two"]


def test_corrupt_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "history.sqlite"
    db.write_bytes(b"this is not a database, just some bytes" * 100)
    with caplog.at_level(logging.WARNING, logger="studio.core.history"):
        store = History(db)
    try:
        assert any("moving it to" in r.getMessage() for r in caplog.records)
        aside = list(tmp_path.glob("history.sqlite.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
        result = _image_result("fresh start")
        store.add_output(_save(tmp_path, result)[0], result)
        assert store.count() == 1
    finally:
        store.close()


def test_lock_errors_are_not_mistaken_for_corruption() -> None:
    assert not history_module._is_corrupt(sqlite3.OperationalError("database is locked"))
    assert history_module._is_corrupt(sqlite3.DatabaseError("file is not a database"))
    assert history_module._is_corrupt(sqlite3.DatabaseError("database disk image is malformed"))


def test_open_default_uses_studio_home(studio_home: Path) -> None:
    with History.open_default() as store:
        assert store.path == studio_home / "history.sqlite"
    assert (studio_home / "history.sqlite").is_file()


def test_closed_index_says_so(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    store.close()
    with pytest.raises(StudioError, match=r"The history index is closed\."):
        store.recent()


def test_rescan_can_keep_to_studio_recipes(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    ours = _save(out, _image_result("ours", seed=3))[0]
    other = out / "a1111.png"
    info = PngInfo()
    info.add_text("parameters", "a crane\nSteps: 20, Sampler: Euler, Seed: 5, Size: 64x64")
    Image.new("RGB", (64, 64)).save(other, pnginfo=info)
    with History(tmp_path / "h.sqlite") as store:
        assert store.rescan(out, sources={"studio"}) == 1
        assert [i.path.name for i in store.recent()] == [ours.name]
        with pytest.raises(RecipeError, match="a1111 recipe"):
            store.import_file(other, sources={"studio"})


def _read_only_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite opens the index read-only, as on a read-only Studio home (root ignores chmod)."""
    real = sqlite3.connect

    def connect(path, *args, **kwargs):
        return real(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(history_module.sqlite3, "connect", connect)


def test_a_read_only_index_says_why_not_cannot_rollback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "history.sqlite"
    History(db, fts=False).close()  # an index in the old journal mode, as copied from elsewhere
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("DROP TABLE meta")  # so that opening it has to write
    con.close()
    _read_only_connect(monkeypatch)
    with pytest.raises(StudioError) as info:
        History(db)
    assert "readonly" in str(info.value) and "rollback" not in str(info.value)


def test_open_for_saving_warns_once_and_returns_none(
        studio_home: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    (studio_home / "history.sqlite").mkdir()  # an index that cannot be a file
    with caplog.at_level(logging.WARNING, logger="studio.notice"):
        assert History.open_for_saving() is None
    notes = [r.getMessage() for r in caplog.records if r.name == "studio.notice"]
    assert len(notes) == 1 and "saved but not indexed" in notes[0]
    (studio_home / "history.sqlite").rmdir()
    store = History.open_for_saving()
    assert store is not None
    store.close()


def _full_disk_connect(monkeypatch: pytest.MonkeyPatch, pages: int = 2) -> None:
    """SQLite may use only `pages` pages, as on a full Studio home (SQLITE_FULL)."""
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(history_module.sqlite3, "connect", connect)


def test_a_full_index_says_it_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(A real full disk, where SQLite rolls back by itself: tests/faults.)"""
    _full_disk_connect(monkeypatch)
    with pytest.raises(StudioError, match=r"database or disk is full\.$"):
        History(tmp_path / "history.sqlite")


def test_rescan_leaves_the_kept_init_images_out(hist: History, tmp_path: Path) -> None:
    """An init image that was itself a Studio output is kept under inputs/ for its recipe;
    it is an input there, not a new output."""
    out = tmp_path / "outputs"
    ours = _save(out, _image_result("the init picture", seed=5))[0]
    kept = ours.parent / "inputs" / "0123abcd.png"
    kept.parent.mkdir()
    kept.write_bytes(ours.read_bytes())
    ours.unlink()
    assert hist.rescan(out) == 0
