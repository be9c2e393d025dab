"""The core store: keyed cache entries under the cache folder, atomic, forgiving on read."""

from __future__ import annotations

import pytest

from studio.core import paths
from studio.core.store import Store


def test_entries_round_trip_under_the_cache_folder(studio_home):
    store = Store("things")
    assert store.read_bytes("a.bin") is None and store.read_json("a.json") is None
    assert store.write_bytes("a.bin", b"\x00\x01") and store.read_bytes("a.bin") == b"\x00\x01"
    assert store.write_json("a.json", {"k": [1, 2]}) and store.read_json("a.json") == {"k": [1, 2]}
    assert store.path("a.bin") == paths.cache_dir() / "things" / "a.bin"
    assert Store().path("x.json") == paths.cache_dir() / "x.json"
    assert sorted(p.name for p in (paths.cache_dir() / "things").iterdir()) == ["a.bin", "a.json"]


def test_a_broken_entry_reads_as_missing_and_bad_keys_are_refused(studio_home):
    store = Store("things")
    store.path("bad.json").parent.mkdir(parents=True)
    store.path("bad.json").write_text("{not json")
    assert store.read_json("bad.json") is None
    for key in ("", "../escape", "a/b", ".."):
        with pytest.raises(ValueError):
            store.path(key)


def test_a_refused_write_is_reported_not_raised(studio_home):
    (paths.cache_dir()).mkdir(parents=True, exist_ok=True)
    (paths.cache_dir() / "blocked").write_text("a file where the folder should be")
    assert Store("blocked").write_bytes("x", b"1") is False


def test_the_folder_follows_the_studio_home(tmp_path, monkeypatch):
    store = Store("later")
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "other-home"))
    assert store.folder == tmp_path / "other-home" / "cache" / "later"
