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
