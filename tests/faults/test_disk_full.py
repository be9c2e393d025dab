"""A disk that fills up part-way through a batch or a walk: what was written is kept,
indexed and reported; nothing half-written or unknown to the gallery is left."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from studio.cli import EXIT_FAILED, main
from studio.core.history import History
from tests.faults.inject import assert_nothing_lost, disk_full_on, output_files, temp_files


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("nth", [1, 2, 9, 16])
def test_batch_of_16_with_the_disk_full_on_image_n(
        nth: int, tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    disk_full_on(monkeypatch, nth)
    code = main(["gen", "image", "--model", "builtin:faces", "--batch", "16", "--width", "64",
                 "--height", "64", "--seed", "5", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    err = _lines(captured.err)
    assert len(err) == 1 and "Traceback" not in captured.err
    saved = [Path(line) for line in _lines(captured.out)]
    assert len(saved) == nth - 1 and all(p.is_file() for p in saved)
    if saved:
        assert err[0].startswith(f"studio: Saved {nth - 1} of 16 images in ")
    else:
        assert err[0].startswith("studio: Could not save the output in ")
    assert err[0].endswith("No space left on device.")
    assert temp_files(out) == [] and output_files(out) == sorted(saved)
    with History.open_default() as history:  # indexed by the failing job itself
        assert sorted(i.path for i in history.recent()) == sorted(p.resolve() for p in saved)
    assert_nothing_lost(out, studio_home / "history.sqlite")


def test_a_walk_whose_mp4_does_not_fit_after_its_gif(
        tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from studio.core.formats.video import ffmpeg_exe

    if ffmpeg_exe() is None:
        pytest.skip("no video encoder here: the walk writes PNG frames instead of an MP4")
    out = tmp_path / "out"
    disk_full_on(monkeypatch, 2)  # 1: the GIF, 2: the MP4 beside it
    code = main(["explore", "walk", "--model", "builtin:faces", "--frames", "3",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED
    err = _lines(captured.err)
    assert len(err) == 1 and "Traceback" not in captured.err
    gif = Path(_lines(captured.out)[0])
    assert _lines(captured.out) == [str(gif)] and gif.suffix == ".gif" and gif.is_file()
    assert err[0] == (f"studio: Saved only {gif.name} in {gif.parent}; the rest could not be "
                      "written: No space left on device.")
    assert not gif.with_suffix(".mp4").exists()
    with History.open_default() as history:
        assert [i.path for i in history.recent()] == [gif.resolve()]
    assert_nothing_lost(out, studio_home / "history.sqlite")


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                           str(folder)], capture_output=True, check=False)
    return proc.returncode == 0


@pytest.fixture
def full_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real, nearly full file system as the Studio home (needs root to mount a tmpfs)."""
    home = tmp_path / "full-home"
    if not _mount_tmpfs(home, 512):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        (home / "fill").write_bytes(b"\0" * (512 - 40) * 1024)
        monkeypatch.setenv("STUDIO_HOME", str(home))
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_a_full_studio_home_costs_no_generation(
        full_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The index cannot even be created there: the file is saved elsewhere, its path printed,
    one warning line says why it is not indexed (never "cannot rollback")."""
    out = tmp_path / "out"
    code = main(["gen", "image", "--model", "builtin:faces", "--width", "64", "--height", "64",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    (path,) = (Path(line) for line in _lines(captured.out))
    assert path.is_file()
    err = _lines(captured.err)
    assert len(err) == 1, err
    assert err[0].startswith("studio: warning: Cannot open the history index ")
    assert "rollback" not in err[0] and "saved but not indexed" in err[0]
    (full_home / "fill").unlink()  # space again: the next start indexes it
    for side in full_home.glob("history.sqlite*"):
        side.unlink()
    assert_nothing_lost(out, full_home / "history.sqlite")
