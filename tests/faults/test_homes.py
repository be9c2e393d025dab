"""A Studio home that is read-only, or whose history index is corrupt: the generation is
never thrown away; one line says what happened; the next start indexes everything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.history import History
from tests.faults.inject import assert_nothing_lost, output_files, temp_files

FACES = ["gen", "image", "--model", "builtin:faces", "--width", "64", "--height", "64"]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _read_only(home: Path):
    """Make `home` read-only for real: a remounted tmpfs as root, chmod otherwise."""
    if os.geteuid() != 0:
        home.chmod(0o555)
        return lambda: home.chmod(0o755)
    if shutil.which("mount") is None:
        pytest.skip("no mount")
    content = home.with_name("content")
    shutil.copytree(home, content)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(home)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    shutil.copytree(content, home, dirs_exist_ok=True)
    subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)

    def undo() -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(home)], check=True)
        shutil.copytree(home, content, dirs_exist_ok=True)
        subprocess.run(["umount", "-l", str(home)], check=True)
        shutil.copytree(content, home, dirs_exist_ok=True)

    return undo


def test_a_read_only_home_saves_prints_and_warns_once(
        studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([*FACES, "--out", str(out)]) == 0  # an index exists, with one output
    capsys.readouterr()
    undo = _read_only(studio_home)
    try:
        code = main([*FACES, "--batch", "2", "--out", str(out)])
        captured = capsys.readouterr()
    finally:
        undo()
    assert code == 0
    saved = [Path(p) for p in _lines(captured.out)]
    assert len(saved) == 2 and all(p.is_file() for p in saved)
    err = _lines(captured.err)
    assert len(err) == 1, captured.err
    assert err[0].startswith("studio: warning: Cannot open the history index ")
    assert "saved but not indexed" in err[0] and "rollback" not in err[0]
    assert "Traceback" not in captured.err
    with History.open_default() as history:
        assert len(history) == 1  # the read-only run could not index its two
    assert_nothing_lost(out, studio_home / "history.sqlite")  # the next start does
    with History.open_default() as history:
        assert len(history) == 3


def test_a_corrupt_history_is_set_aside_and_rebuilt_from_the_files(
        studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([*FACES, "--batch", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    db = studio_home / "history.sqlite"
    for side in studio_home.glob("history.sqlite-*"):
        side.unlink()
    db.write_bytes(b"not a database, just bytes " * 300)
    code = main([*FACES, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert len(_lines(captured.out)) == 1
    err = _lines(captured.err)
    assert len(err) == 1 and err[0].startswith("studio: warning: The history index ")
    assert "was unreadable" in err[0] and "Traceback" not in captured.err
    assert len(list(studio_home.glob("history.sqlite.corrupt-*"))) == 1
    with History.open_default() as history:  # the old outputs were indexed again
        assert len(history) == 4 == len(output_files(out))
    assert temp_files(out) == []
    assert_nothing_lost(out, db)


def test_an_index_that_cannot_be_a_file_costs_no_generation(
        studio_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (studio_home / "history.sqlite").mkdir()
    out = tmp_path / "out"
    assert main([*FACES, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert len(_lines(captured.out)) == 1 and Path(captured.out.strip()).is_file()
    assert len(_lines(captured.err)) == 1 and "not indexed" in captured.err
    (studio_home / "history.sqlite").rmdir()
    assert_nothing_lost(out, studio_home / "history.sqlite")
