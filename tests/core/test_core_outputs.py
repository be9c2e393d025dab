"""Output files: day folders, running numbers, slugs for any prompt, atomic, never overwriting."""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.core import atomic, outputs
from studio.core.atomic import atomic_write, atomic_write_bytes
from studio.core.errors import StudioError
from studio.core.outputs import day_folder, save_result, slugify, write_beside, write_new_output
from studio.core.requests import ImageRequest
from studio.core.results import Result
from tests.faults.inject import disk_full_on

WHEN = dt.datetime(2026, 3, 14, 15, 9, 26)


def _writer(data: bytes):
    return lambda f: f.write(data)


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_day_folder_and_numbering(tmp_path: Path) -> None:
    assert day_folder(tmp_path, WHEN) == tmp_path / "2026-03-14"
    paths = [write_new_output(tmp_path, 7, "a red fox", ".png", _writer(b"x%d" % i), WHEN)
             for i in range(3)]
    assert [p.name for p in paths] == [
        "00001-7-a-red-fox.png", "00002-7-a-red-fox.png", "00003-7-a-red-fox.png"]
    assert all(p.parent == tmp_path / "2026-03-14" for p in paths)
    assert [p.read_bytes() for p in paths] == [b"x0", b"x1", b"x2"]


def test_numbering_continues_after_the_highest_existing_number(tmp_path: Path) -> None:
    folder = day_folder(tmp_path, WHEN)
    folder.mkdir(parents=True)
    (folder / "00041-1-old.png").write_bytes(b"old")
    (folder / "notes.txt").write_text("not an output")
    path = write_new_output(tmp_path, 9, "new", ".png", _writer(b"new"), WHEN)
    assert path.name == "00042-9-new.png"
    assert (folder / "00041-1-old.png").read_bytes() == b"old"


def test_never_overwrites_an_existing_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = day_folder(tmp_path, WHEN)
    folder.mkdir(parents=True)
    taken = folder / "00001-5-cat.png"
    taken.write_bytes(b"precious")
    # pretend the folder scan missed it (another process wrote it just now)
    monkeypatch.setattr(outputs, "_next_number", lambda _folder: 1)
    path = write_new_output(tmp_path, 5, "cat", ".png", _writer(b"new"), WHEN)
    assert path.name == "00002-5-cat.png"
    assert taken.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("A red fox, in the snow!", "a-red-fox-in-the-snow"),
        ("雪の中の赤い狐", "雪の中の赤い狐"),
        ("一只红色的狐狸 in snow", "一只红色的狐狸-in-snow"),
        ("🦊🦊 fox 🌨️", "fox"),
        ("🦊🌨️", "untitled"),
        ("", "untitled"),
        ("   ", "untitled"),
        ("../../etc/passwd", "etc-passwd"),
        ("..\\..\\Windows\\System32", "windows-system32"),
        ("C:/Users/x", "c-users-x"),
        ("name\x00with\nnul", "name-with-nul"),
        ("नमस्ते दुनिया", "नमस्ते-दुनिया"),
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("Straße café", "straße-café"),
    ],
)
def test_slugify_any_language_and_path_tricks(prompt: str, expected: str) -> None:
    slug = slugify(prompt)
    assert slug == expected
    assert "/" not in slug and "\\" not in slug and ".." not in slug and "\x00" not in slug


def test_slug_length_is_bounded() -> None:
    assert len(slugify("word " * 100)) <= outputs.SLUG_MAX
    assert not slugify("word " * 100).endswith("-")
    assert len(slugify("字" * 200).encode("utf-8")) < 200  # well under the 255-byte name limit


def test_path_tricks_stay_inside_the_day_folder(tmp_path: Path) -> None:
    for prompt in ("../../escape", "/abs/path", "a/../../b", ".hidden", "..."):
        path = write_new_output(tmp_path, 1, prompt, ".png", _writer(b"x"), WHEN)
        assert path.parent == tmp_path / "2026-03-14"
        assert path.resolve().parent == (tmp_path / "2026-03-14").resolve()
        assert not path.name.startswith(".")


def test_concurrent_writers_never_collide(tmp_path: Path) -> None:
    """Threads saving the same seed and prompt at once: all files kept, numbers unique."""
    errors: list[BaseException] = []
    written: list[Path] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(6):
                payload = f"{worker}-{i}".encode() * 1000
                path = write_new_output(tmp_path, 3, "same", ".png", _writer(payload), WHEN)
                with lock:
                    written.append(path)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(written) == len(set(written)) == 48
    numbers = sorted(int(p.name[:5]) for p in written)
    assert numbers == list(range(1, 49))
    contents = {p.read_bytes() for p in written}
    assert contents == {f"{w}-{i}".encode() * 1000 for w in range(8) for i in range(6)}
    assert _visible(tmp_path / "2026-03-14") == sorted(p.name for p in written)  # no .part


def test_no_partial_file_when_the_writer_raises(tmp_path: Path) -> None:
    def broken(f) -> None:
        f.write(b"half of a picture")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_new_output(tmp_path, 1, "fox", ".png", broken, WHEN)
    assert _visible(tmp_path / "2026-03-14") == []
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.bin", broken)
    assert not (tmp_path / "x.bin").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_atomic_write_overwrite_modes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")  # overwrite=True replaces
    assert target.read_bytes() == b"two"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"three", overwrite=False)
    assert target.read_bytes() == b"two"
    assert _visible(target.parent) == ["file.json"]


def test_new_files_get_normal_permissions(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; outputs must be readable like any other new file."""
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_bytes(tmp_path / "a.bin", b"x", overwrite=False)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_claim_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On FAT or some network shares os.link fails: still atomic, still never overwrites."""

    def no_links(*_args, **_kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    first = atomic_write_bytes(tmp_path / "a.png", b"first", overwrite=False)
    assert first.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(tmp_path / "a.png", b"second", overwrite=False)
    assert first.read_bytes() == b"first"
    path = write_new_output(tmp_path, 1, "x", ".png", _writer(b"y"), WHEN)
    assert path.read_bytes() == b"y"
    assert not [p for p in tmp_path.rglob("*.part")]


def test_write_beside(tmp_path: Path) -> None:
    main = write_new_output(tmp_path, 4, "tune", ".wav", _writer(b"RIFF"), WHEN)
    mid = write_beside(main, ".mid", b"MThd")
    assert mid == main.with_suffix(".mid") and mid.read_bytes() == b"MThd"
    with pytest.raises(FileExistsError):
        write_beside(main, ".mid", b"other")


def test_save_result_dispatches_and_explains_failures(tmp_path: Path) -> None:
    request = ImageRequest(model="builtin:faces", prompt="face", seed=10)
    result = Result(request=request, modality="image",
                    images=[np.full((64, 64, 3), 200, np.uint8)])
    paths = save_result(result, tmp_path)
    assert len(paths) == 1 and paths[0].suffix == ".png" and paths[0].is_file()

    with pytest.raises(StudioError, match=r"No writer for video outputs\."):
        save_result(Result(request=request, modality="video"), tmp_path)  # type: ignore[arg-type]

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(StudioError, match="Could not save the output in"):
        save_result(result, blocker)


# ─── one rule for saves that fail part-way: every complete file is kept and indexed ───


def _faces(n: int, seed: int = 3) -> Result:
    request = ImageRequest(model="builtin:faces", prompt="a batch", seed=seed, width=64,
                           height=64, batch_size=n)
    return Result(request=request, modality="image",
                  images=[np.full((64, 64, 3), 10 * i, np.uint8) for i in range(n)])


def test_a_batch_that_fills_the_disk_keeps_and_reports_what_was_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk_full_on(monkeypatch, 3)
    with pytest.raises(outputs.SaveError) as info:
        save_result(_faces(16), tmp_path)
    err = info.value
    assert str(err).startswith("Saved 2 of 16 images in ")
    assert str(err).endswith("the rest could not be written: No space left on device.")
    assert len(err.paths) == 2 and all(p.is_file() for p in err.paths)
    assert sorted(p.name for p in err.paths) == _visible(err.paths[0].parent)  # no .part


def test_a_save_that_writes_nothing_is_a_save_error_with_no_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(outputs.SaveError, match="Could not save the output in") as info:
        save_result(_faces(2), blocker)
    assert info.value.paths == []


class _Index:
    """A stand-in history that records what it indexed and can fail like a full disk."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.added: list[Path] = []

    def add_output(self, path: Path, result: Result) -> int:
        if self.fail:
            raise StudioError("The history index failed: database or disk is full.")
        self.added.append(path)
        return len(self.added)


def test_save_and_index_indexes_the_files_a_failed_save_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk_full_on(monkeypatch, 2)
    index = _Index()
    with pytest.raises(outputs.SaveError) as info:
        outputs.save_and_index(_faces(4), tmp_path, index)  # type: ignore[arg-type]
    assert index.added == info.value.paths and len(index.added) == 1


def test_a_file_the_index_refuses_is_kept_with_one_notice(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="studio.notice"):
        paths = outputs.save_and_index(_faces(3), tmp_path, _Index(fail=True))  # type: ignore[arg-type]
    assert len(paths) == 3 and all(p.is_file() for p in paths)
    notes = [r.getMessage() for r in caplog.records if r.name == "studio.notice"]
    assert notes == ["Saved 3 files but could not add them to the history (The history index "
                     "failed: database or disk is full); Studio indexes them when it next "
                     "starts."]


def test_save_and_index_without_a_history_just_saves(tmp_path: Path) -> None:
    assert len(outputs.save_and_index(_faces(2), tmp_path, None)) == 2


# ─── temporary files: locked while written, recognised as stale once their writer died ───


def test_a_temp_file_being_written_is_not_stale_but_a_dead_writers_is(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    seen: list[bool] = []

    def write(f):
        f.write(b"data")
        tmp = next(tmp_path.glob(".*.part"))
        seen.append(atomic.is_stale_temp(tmp))
        assert atomic.remove_stale_temps(tmp_path) == []

    atomic_write_bytes(tmp_path / "out.png", b"")  # the name is taken: warm the folder
    with atomic.temp_file(tmp_path, write, "x.png") as tmp:
        assert not atomic.is_stale_temp(tmp)  # still locked until claimed or removed
    assert seen == [False]
    left = tmp_path / ".dead.png.abcd.part"  # what a killed process leaves (no lock)
    left.write_bytes(b"half")
    assert atomic.is_temp_name(left.name) and not atomic.is_temp_name("00001-1-x.png")
    assert atomic.remove_stale_temps(tmp_path) == [left]
    assert _visible(tmp_path) == ["out.png"]
