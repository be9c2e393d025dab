"""64-bit seeds in the history index: stored exactly (TEXT), and a version-1 database
(seeds in an INTEGER column) migrated on open without losing a row, an id, a rating or
the search index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from studio.core.formats.png import save_images
from studio.core.history import SCHEMA_VERSION, History
from studio.core.requests import ImageRequest
from studio.core.results import Result

TOP = 2**64 - 1

V1_SCHEMA = """
CREATE TABLE outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    model TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    request TEXT NOT NULL DEFAULT '{}',
    width INTEGER,
    height INTEGER,
    duration REAL,
    source TEXT NOT NULL DEFAULT 'studio',
    search TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outputs_created ON outputs(created, id);
CREATE INDEX outputs_modality ON outputs(modality);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE VIRTUAL TABLE outputs_fts USING fts5(search, content='outputs', content_rowid='id',
                                             tokenize='trigram');
CREATE TRIGGER outputs_ai AFTER INSERT ON outputs BEGIN
    INSERT INTO outputs_fts(rowid, search) VALUES (new.id, new.search); END;
PRAGMA user_version = 1;
"""


def _saved(tmp_path: Path, seed: int, n: int = 1) -> tuple[Result, list[Path]]:
    request = ImageRequest(model="m.safetensors", prompt="a red fox", seed=seed, width=64,
                           height=64, batch_size=n)
    result = Result(request=request, modality="image",
                    images=[np.full((16, 16, 3), 7, np.uint8)] * n,
                    info={"seeds": [(seed + i) % 2**64 for i in range(n)]})
    return result, save_images(result, tmp_path / "out")


def test_seeds_beyond_63_bits_are_stored_exactly(tmp_path: Path) -> None:
    result, paths = _saved(tmp_path, TOP, n=2)  # the batch wraps: TOP, then 0
    with History(tmp_path / "h.sqlite") as history:
        ids = [history.add_output(p, result) for p in paths]
        assert [history.get(i).seed for i in ids] == [TOP, 0]
        assert history.get(ids[0]).to_request().seed == TOP
        item = history.get(ids[0])
        history.remove(item.id)
        assert history.restore(item) == item.id and history.get(item.id).seed == TOP
    conn = sqlite3.connect(tmp_path / "h.sqlite")
    try:
        stored = conn.execute("SELECT seed, typeof(seed) FROM outputs ORDER BY seed").fetchall()
    finally:
        conn.close()
    assert stored == [("0", "text"), (str(TOP), "text")]


def test_a_version_1_database_is_migrated_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    files = []
    for i in range(3):
        _result, (file,) = _saved(tmp_path / str(i), 10 + i)
        files.append(file)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(V1_SCHEMA)
        for i, file in enumerate(files):
            conn.execute("INSERT INTO outputs (id, path, modality, prompt, seed, model, created, "
                         "rating, request, search) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (5 + i * 2, str(file.resolve()), "image", f"fox {i}", 2**63 - 1 - i,
                          "m", f"2025-01-0{i + 1}T00:00:00+00:00", i, "{}", f"fox {i}\nm"))
        conn.execute("UPDATE sqlite_sequence SET seq = 20 WHERE name = 'outputs'")  # 11-20 gone
        conn.commit()
    finally:
        conn.close()
    with History(path) as history:
        items = sorted(history.recent(), key=lambda item: item.id)
        assert [(i.id, i.seed, i.rating, i.prompt) for i in items] == [
            (5, 2**63 - 1, 0, "fox 0"), (7, 2**63 - 2, 1, "fox 1"), (9, 2**63 - 3, 2, "fox 2")]
        assert [i.id for i in history.search("fox 1")] == [7]  # the search index came along
        result, (new,) = _saved(tmp_path / "new", TOP)
        added = history.add_output(new, result)
        assert added == 21  # ids of deleted entries stay retired
        assert history.get(added).seed == TOP
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        kinds = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(outputs)")}
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert kinds["seed"] == "TEXT" and "outputs_v1" not in names
    assert {"outputs_created", "outputs_modality"} <= names
    with History(path) as again:  # opening a migrated database changes nothing
        assert len(again) == 4
