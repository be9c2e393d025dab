"""Deleting to the trash: the output and its companions moved, the history row removed,
and both put back by restore; the history's filter queries the Gallery uses."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import pytest

from studio.core import trash
from studio.core.errors import StudioError
from studio.core.formats.png import save_images
from studio.core.history import History
from studio.core.requests import ImageRequest
from studio.core.results import Result


@pytest.fixture
def hist(tmp_path: Path):
    store = History(tmp_path / "history.sqlite")
    yield store
    store.close()


def saved_picture(out: Path, hist: History, prompt: str = "a red fox", seed: int = 5,
                  model: str = "builtin:faces") -> Path:
    request = ImageRequest(model=model, prompt=prompt, seed=seed, width=64, height=64)
    result = Result(request=request, modality="image",
                    images=[np.full((64, 64, 3), 120, np.uint8)])
    (path,) = save_images(result, out)
    hist.add_output(path, result)
    return path


def test_trash_moves_the_output_and_its_companions_and_restore_puts_them_back(tmp_path, hist):
    out = tmp_path / "outputs"
    path = saved_picture(out, hist)
    hist.set_rating(hist.find_path(path).id, 4)
    before = hist.find_path(path)
    mid = path.with_suffix(".mid")
    mid.write_bytes(b"MThd")
    xmp = Path(str(path) + ".xmp")
    xmp.write_text("<x/>")
    frames = path.with_name(path.stem + "-frames")
    frames.mkdir()
    (frames / "0001.png").write_bytes(b"frame")
    other = path.with_name(path.stem + ".v2.png")  # another output, not a companion
    other.write_bytes(b"other")
    content = path.read_bytes()

    trashed = trash.trash_output(path, out, hist)
    assert trashed.path == path
    assert not path.exists() and not mid.exists() and not xmp.exists()
    assert not frames.exists() and other.exists()
    assert trashed.folder.parent == out / ".trash"
    inside = sorted(p.name for p in trashed.folder.iterdir())
    assert inside == sorted([path.name, mid.name, xmp.name, frames.name, trash.MANIFEST])
    assert (trashed.folder / path.name).read_bytes() == content
    manifest = json.loads((trashed.folder / trash.MANIFEST).read_text())
    assert manifest["files"][0] == {"from": str(path), "to": path.name}
    assert manifest["history"]["rating"] == 4
    assert hist.find_path(path) is None and len(hist) == 0
    # the trash is hidden from a rescan of the output folder
    assert hist.rescan(out) == 0

    assert trash.restore(trashed, hist) == path
    assert path.read_bytes() == content and mid.exists() and xmp.exists()
    assert (frames / "0001.png").read_bytes() == b"frame"
    assert not trashed.folder.exists()
    back = hist.find_path(path)
    assert back == before  # same id, rating, date and recipe
    assert [it.path for it in hist.search("fox")] == [path]  # searchable again


def test_restore_refuses_when_the_place_is_taken(tmp_path, hist):
    out = tmp_path / "outputs"
    path = saved_picture(out, hist)
    trashed = trash.trash_output(path, out, hist)
    path.write_bytes(b"a new file with the old name")
    with pytest.raises(StudioError, match="a file of that name is there now"):
        trash.restore(trashed, hist)
    assert (trashed.folder / path.name).exists()  # nothing moved
    assert hist.find_path(path) is None


def test_trashing_a_missing_file_is_one_sentence(tmp_path, hist):
    with pytest.raises(StudioError, match="not there any more"):
        trash.trash_output(tmp_path / "gone.png", tmp_path, hist)


def test_an_entry_whose_file_is_gone_loses_only_its_row_and_gets_it_back(tmp_path, hist):
    out = tmp_path / "outputs"
    path = saved_picture(out, hist)
    before = hist.find_path(path)
    path.unlink()
    trashed = trash.trash_output(path, out, hist)
    assert trashed.path == path and trashed.folder is None and trashed.moves == ()
    assert hist.find_path(path) is None
    assert not (out / ".trash").exists()
    assert trash.restore(trashed, hist) == path
    assert hist.find_path(path) == before


def test_a_failed_move_leaves_everything_in_place(tmp_path, hist, monkeypatch):
    out = tmp_path / "outputs"
    path = saved_picture(out, hist)
    mid = path.with_suffix(".mid")
    mid.write_bytes(b"MThd")
    real_move = trash._move
    calls = []

    def failing_move(source: Path, target: Path) -> None:
        calls.append(source)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied")
        real_move(source, target)

    monkeypatch.setattr(trash, "_move", failing_move)
    with pytest.raises(StudioError, match=r"Could not move .* to the trash: Permission denied"):
        trash.trash_output(path, out, hist)
    assert path.exists() and mid.exists()
    assert hist.find_path(path) is not None
    assert not any((out / ".trash").iterdir())


def test_filtered_narrows_by_model_rating_kind_and_date(tmp_path, hist):
    out = tmp_path / "outputs"
    fox = saved_picture(out, hist, "a red fox", 1, "builtin:faces")
    owl = saved_picture(out, hist, "an owl", 2, "builtin:eyes")
    hist.set_rating(hist.find_path(owl).id, 5)
    assert hist.models() == ["builtin:eyes", "builtin:faces"]
    assert [i.path for i in hist.filtered(model="builtin:faces")] == [fox]
    assert [i.path for i in hist.filtered(min_rating=3)] == [owl]
    assert [i.path for i in hist.filtered("owl", "image", model="builtin:eyes")] == [owl]
    assert hist.filtered(modality="music") == []
    now = _dt.datetime.now(_dt.UTC)
    assert len(hist.filtered(since=now - _dt.timedelta(hours=1))) == 2
    assert hist.filtered(since=now + _dt.timedelta(hours=1)) == []
    assert hist.filtered(until=now - _dt.timedelta(hours=1)) == []
    local = now.astimezone()  # any aware datetime compares in UTC
    assert len(hist.filtered(until=local + _dt.timedelta(minutes=1))) == 2
