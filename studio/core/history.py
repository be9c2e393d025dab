"""The history index: every saved output in one SQLite file, searchable by prompt or model.

The files are the truth; this is only an index. A row is added after its file exists;
a missing file is reported by `HistoryItem.exists`, never fatal; a corrupt database is
moved aside and a fresh one started. One connection serves all threads (the worker
writes, the GUI reads) behind a lock, in WAL mode so other processes (the CLI) can
write at the same time.

Search is case-insensitive in any script: prompts and model names are stored case-folded
in a `search` column, matched through an FTS5 trigram index when SQLite has one (terms of
3+ characters) and by substring (`instr`) otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.environment import notices
from studio.core.errors import RecipeError, StudioError
from studio.core.results import Result

log = logging.getLogger(__name__)

#: 2: seeds stored as TEXT (64-bit seeds do not fit SQLite's signed INTEGER)
SCHEMA_VERSION = 2
# Files that can be a gallery entry, by modality. Other files of a result are companions
# of the entry with the same stem (the .mid beside a .wav, the .mp4 beside a walk's .gif),
# or frames in the `<stem>-frames/` folder beside a walk's .gif.
PRIMARY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "image": (".png", ".jpg", ".jpeg", ".webp"),
    "text": (".md", ".txt"),
    "music": (".wav", ".flac", ".ogg", ".mp3"),
    "explore": (".gif",),  # explorer walks; the .mp4 beside joins the GIF's entry
}
ALL_SUFFIXES = tuple(s for group in PRIMARY_SUFFIXES.values() for s in group)
FRAMES_SUFFIX = "-frames"  # as studio.core.formats.video names a walk's frame folder
INPUTS_FOLDER = "inputs"  # a day's init images and masks that recipes point at (not outputs)

#: the outputs table (seed is TEXT: exact 64-bit seeds; see _migrate_seed_column)
_OUTPUTS_COLUMNS = """
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    seed TEXT,
    model TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    request TEXT NOT NULL DEFAULT '{}',
    width INTEGER,
    height INTEGER,
    duration REAL,
    source TEXT NOT NULL DEFAULT 'studio',
    search TEXT NOT NULL DEFAULT ''
"""
_COLUMNS = ("id, path, modality, prompt, seed, model, created, rating, request, "
            "width, height, duration, source")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _fold(text: str) -> str:
    return (text or "").casefold()


class _CorruptError(sqlite3.DatabaseError):
    """Our own integrity check failed."""


def _is_corrupt(exc: BaseException) -> bool:
    """Damage to the file itself (not a lock or a permission problem)."""
    if isinstance(exc, _CorruptError):
        return True
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return True
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


@dataclass(frozen=True)
class HistoryItem:
    """One indexed output. `request` is the request dict that made it."""

    id: int
    path: Path
    modality: str
    prompt: str
    seed: int | None
    model: str
    created: str  # ISO 8601, UTC
    rating: int = 0
    request: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    source: str = "studio"

    @property
    def exists(self) -> bool:
        """False when the file was moved or deleted since it was indexed."""
        try:
            return self.path.is_file()
        except OSError:
            return False

    @property
    def created_at(self) -> _dt.datetime:
        """`created` as a local-time datetime (for display)."""
        try:
            return _dt.datetime.fromisoformat(self.created).astimezone()
        except ValueError:
            return _dt.datetime.fromtimestamp(0).astimezone()

    def to_request(self) -> Any:
        """The Request to replay this output, or None when the stored one is unusable."""
        from studio.core.requests import Request

        try:
            return Request.from_dict(self.request)
        except (StudioError, TypeError, ValueError):
            return None


class History:
    """The SQLite history index (thread-safe; see module docstring)."""

    def __init__(self, path: str | Path, *, fts: bool | None = None) -> None:
        """Open (or create) the index at `path`. fts=False forces the substring search."""
        self.path = Path(path)
        self._lock = threading.RLock()
        self._want_fts = fts
        self.fts = False
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(f"Cannot create the folder for the history index "
                              f"{self.path.parent}: {exc.strerror or exc}.") from exc
        try:
            self._conn = self._connect()
        except sqlite3.Error as exc:
            if not _is_corrupt(exc):  # locked, read-only...: the file itself may be fine
                raise StudioError(f"Cannot open the history index {self.path}: {exc}.") from exc
            self._move_aside(exc)
            try:
                self._conn = self._connect()
            except sqlite3.Error as exc2:
                raise StudioError(f"Cannot open the history index {self.path}: {exc2}.") from exc2

    @classmethod
    def open_default(cls) -> History:
        """The index in the Studio home (paths.history_path())."""
        return cls(paths.history_path())

    @classmethod
    def open_for_saving(cls) -> History | None:
        """The default index for a headless save, or None (one warning) when it cannot open.

        A read-only or full Studio home must not cost a finished generation: the files
        are saved anyway and indexed when Studio next starts with a usable index.
        """
        try:
            return cls.open_default()
        except StudioError as exc:
            notices.warning("%s Outputs are saved but not indexed; Studio indexes them when it "
                        "next starts.", exc)
            return None

    # ── setup ──

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False,
                               isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:  # e.g. some network file systems
                log.info("history: WAL mode not available (%s)", exc)
            conn.execute("PRAGMA synchronous = NORMAL")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise _CorruptError(f"integrity check failed: {row[0] if row else '?'}")
            self._create_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate_seed_column(conn)
            conn.execute(f"CREATE TABLE IF NOT EXISTS outputs ({_OUTPUTS_COLUMNS})")
            conn.execute("CREATE INDEX IF NOT EXISTS outputs_created ON outputs(created, id)")
            conn.execute("CREATE INDEX IF NOT EXISTS outputs_modality ON outputs(modality)")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.fts = self._setup_fts(conn)
            conn.execute("COMMIT")
        except BaseException:
            # BEGIN itself fails on a read-only or full index: then there is nothing to roll
            # back, and "cannot rollback" must not hide the real reason.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _setup_fts(self, conn: sqlite3.Connection) -> bool:
        """Create (or repair) the trigram index; False when this SQLite has none."""
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'outputs_fts'").fetchone() is not None
        if self._want_fts is False:
            available = False
        else:
            try:
                conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS outputs_fts USING fts5("
                             "search, content='outputs', content_rowid='id', "
                             "tokenize='trigram')")
                available = True
            except sqlite3.OperationalError as exc:
                log.info("history: no FTS5 trigram index (%s); using substring search", exc)
                available = False
        if not available:
            # Without the index, triggers that feed it would fail: drop them and remember
            # that the index (if any) is stale.
            for name in ("outputs_ai", "outputs_ad", "outputs_au"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            if has_table:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('fts_stale', '1')")
            return False
        triggers = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        stale = conn.execute("SELECT value FROM meta WHERE key = 'fts_stale'").fetchone()
        conn.execute("""CREATE TRIGGER IF NOT EXISTS outputs_ai AFTER INSERT ON outputs BEGIN
            INSERT INTO outputs_fts(rowid, search) VALUES (new.id, new.search); END""")
        conn.execute("""CREATE TRIGGER IF NOT EXISTS outputs_ad AFTER DELETE ON outputs BEGIN
            INSERT INTO outputs_fts(outputs_fts, rowid, search)
            VALUES ('delete', old.id, old.search); END""")
        conn.execute("""CREATE TRIGGER IF NOT EXISTS outputs_au AFTER UPDATE OF search
            ON outputs BEGIN
            INSERT INTO outputs_fts(outputs_fts, rowid, search)
            VALUES ('delete', old.id, old.search);
            INSERT INTO outputs_fts(rowid, search) VALUES (new.id, new.search); END""")
        if stale or not has_table or len(triggers & {"outputs_ai", "outputs_ad",
                                                     "outputs_au"}) < 3:
            conn.execute("INSERT INTO outputs_fts(outputs_fts) VALUES ('rebuild')")
            conn.execute("DELETE FROM meta WHERE key = 'fts_stale'")
        return True

    def _move_aside(self, exc: BaseException) -> None:
        """Keep a corrupt index for inspection and start a fresh one."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        log.warning("history: %s is unreadable (%s); moving it to %s and starting a new index",
                    self.path, exc, target.name)
        notices.warning("The history index %s was unreadable; it is kept as %s and a new one "
                        "was started (your outputs are indexed again from their recipes).",
                        self.path, target.name)
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, target.with_name(target.name + suffix))
        except OSError as err:
            raise StudioError(f"The history index {self.path} is corrupt and could not be "
                              f"moved aside: {err.strerror or err}.") from err

    # ── plumbing ──

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StudioError("The history index is closed.")
        return self._conn

    def _execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StudioError(f"The history index failed: {exc}.") from exc

    def _change(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> int:
        """Run an UPDATE/DELETE; returns how many rows it changed."""
        with self._lock:
            try:
                return self._db().execute(sql, args).rowcount
            except sqlite3.Error as exc:
                raise StudioError(f"The history index failed: {exc}.") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @staticmethod
    def _key(path: str | Path) -> str:
        return str(Path(path).expanduser().resolve())

    @staticmethod
    def _item(row: sqlite3.Row) -> HistoryItem:
        try:
            request = json.loads(row["request"] or "{}")
        except ValueError:
            request = {}
        return HistoryItem(
            id=row["id"], path=Path(row["path"]), modality=row["modality"],
            prompt=row["prompt"], seed=_seed_of(row["seed"]), model=row["model"],
            created=row["created"], rating=row["rating"],
            request=request if isinstance(request, dict) else {},
            width=row["width"], height=row["height"], duration=row["duration"],
            source=row["source"],
        )

    def _upsert(self, path: Path, modality: str, request: dict[str, Any], *, created: str,
                width: int | None = None, height: int | None = None,
                duration: float | None = None, source: str = "studio") -> int:
        prompt = str(request.get("prompt") or "")
        model = str(request.get("model") or "")
        seed = _seed_text(request.get("seed"))
        search = _fold(f"{prompt}\n{model}")
        rows = self._execute(
            "INSERT INTO outputs (path, modality, prompt, seed, model, created, request, "
            "width, height, duration, source, search) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(path) DO UPDATE SET modality=excluded.modality, "
            "prompt=excluded.prompt, seed=excluded.seed, model=excluded.model, "
            "request=excluded.request, width=excluded.width, height=excluded.height, "
            "duration=excluded.duration, source=excluded.source, search=excluded.search "
            "RETURNING id",
            (self._key(path), modality, prompt, seed, model, created,
             json.dumps(request, ensure_ascii=False, default=str), width, height, duration,
             source, search),
        )
        return int(rows[0][0])

    # ── adding ──

    def add_output(self, path: str | Path, result: Result) -> int:
        """Index a saved output (after its file exists); returns the row id.

        The request stored is the one inside the file when it has one (so each image of
        a batch keeps its own seed), else the result's. A companion file (the .mid beside
        a .wav) joins the entry of its main file instead of making its own.
        """
        path = Path(path)
        if not path.is_file():
            raise StudioError(f"Cannot index {path}: the file does not exist.")
        modality = result.modality
        if (path.suffix.lower() not in PRIMARY_SUFFIXES.get(modality, ALL_SUFFIXES)
                or path.parent.name.endswith(FRAMES_SUFFIX)):
            main = self._companion_of(path)
            if main is not None:
                return main
        request: dict[str, Any] = {}
        width = height = None
        try:
            from studio.core.recipes import read_recipe

            recipe = read_recipe(path)
            if recipe.source == "studio" and recipe.request:
                request = dict(recipe.request)
            size = recipe.raw.get("size") if isinstance(recipe.raw, dict) else None
            if isinstance(size, (list, tuple)) and len(size) == 2:
                width, height = int(size[0]), int(size[1])
        except (StudioError, OSError, ValueError, TypeError) as exc:
            log.debug("history: no recipe read back from %s (%s)", path, exc)
        if not request:
            request = result.request.to_dict()
        if width is None and result.images:
            shape: tuple[int, ...] = getattr(result.images[0], "shape", ())
            if len(shape) >= 2:
                height, width = int(shape[0]), int(shape[1])
        duration = None
        if result.audio is not None and result.sample_rate:
            duration = float(result.audio.shape[-1]) / float(result.sample_rate)
        elif modality == "music" and isinstance(request.get("duration"), (int, float)):
            duration = float(request["duration"])
        return self._upsert(path, modality, request, created=_now(), width=width,
                            height=height, duration=duration)

    def _companion_of(self, path: Path) -> int | None:
        """The entry a companion file belongs to (same stem, or its frames folder)."""
        key = self._key(path)
        stem = key[: len(key) - len(path.suffix)]
        folder = Path(key).parent
        if folder.name.endswith(FRAMES_SUFFIX):
            stem = str(folder.with_name(folder.name[: -len(FRAMES_SUFFIX)]))
        like = stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"
        rows = self._execute("SELECT id, path FROM outputs WHERE path LIKE ? ESCAPE '\\'",
                             (like,))
        for row in rows:
            other = Path(row["path"])
            if other.suffix.lower() in ALL_SUFFIXES and str(other.with_suffix("")) == stem:
                return int(row["id"])
        return None

    def import_file(self, path: str | Path, *, sources: Collection[str] | None = None) -> int:
        """Index an existing file from its own recipe (dropped files, rescans); returns the id.

        Raises RecipeError when the file holds no recipe (or, with `sources`, none written
        by one of those apps, e.g. {"studio"}).
        """
        from studio.core.recipes import read_recipe

        path = Path(path)
        recipe = read_recipe(path)
        if sources is not None and recipe.source not in sources:
            raise RecipeError(f"{path.name} holds a {recipe.source} recipe, not one of "
                              f"{', '.join(sorted(sources))}.")
        request = dict(recipe.request)
        request.pop("notes", None)
        request.setdefault("kind", recipe.modality)
        size = recipe.raw.get("size") if isinstance(recipe.raw, dict) else None
        width = height = None
        if isinstance(size, (list, tuple)) and len(size) == 2:
            width, height = int(size[0]), int(size[1])
        duration = recipe.raw.get("duration") if isinstance(recipe.raw, dict) else None
        if not isinstance(duration, (int, float)):
            duration = request.get("duration") if recipe.modality == "music" else None
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise StudioError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        created = _dt.datetime.fromtimestamp(mtime, _dt.UTC).isoformat(
            timespec="milliseconds")
        return self._upsert(path, recipe.modality, request, created=created, width=width,
                            height=height,
                            duration=float(duration) if duration is not None else None,
                            source=recipe.source)

    def rescan(self, folder: str | Path, *, sources: Collection[str] | None = None) -> int:
        """Index every output file under `folder` that is not indexed yet; returns how many.

        With `sources` only files whose recipe one of those apps wrote are indexed.
        """
        added = 0
        known = {row[0] for row in self._execute("SELECT path FROM outputs")}
        for path in _walk(Path(folder)):
            if self._key(path) in known:
                continue
            try:
                self.import_file(path, sources=sources)
                added += 1
            except RecipeError as exc:
                log.debug("history: skipping %s (%s)", path, exc)
        return added

    # ── reading ──

    def search(self, text: str = "", modality: str | None = None, limit: int = 200,
               offset: int = 0, *, min_rating: int = 0) -> list[HistoryItem]:
        """Newest first; every word of `text` must occur in the prompt or the model name."""
        where, args = self._where(text, modality, min_rating)
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM outputs {where} ORDER BY created DESC, id DESC "
            "LIMIT ? OFFSET ?", [*args, max(0, int(limit)), max(0, int(offset))])
        return [self._item(r) for r in rows]

    def count(self, text: str = "", modality: str | None = None, *, min_rating: int = 0) -> int:
        where, args = self._where(text, modality, min_rating)
        return int(self._execute(f"SELECT count(*) FROM outputs {where}", args)[0][0])

    def filtered(self, text: str = "", modality: str | None = None, *, min_rating: int = 0,
                 model: str | None = None, since: _dt.datetime | None = None,
                 until: _dt.datetime | None = None, limit: int = 200,
                 offset: int = 0) -> list[HistoryItem]:
        """`search` narrowed to one model id and a time span (`since` ≤ created < `until`,
        aware datetimes): the Gallery's filter row."""
        where, args = self._where(text, modality, min_rating)
        clauses = [where[len("WHERE "):]] if where else []
        if model:
            clauses.append("model = ?")
            args.append(model)
        for op, when in ((">=", since), ("<", until)):
            if when is not None:
                clauses.append(f"created {op} ?")
                args.append(when.astimezone(_dt.UTC).isoformat(timespec="milliseconds"))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM outputs {where} ORDER BY created DESC, id DESC "
            "LIMIT ? OFFSET ?", [*args, max(0, int(limit)), max(0, int(offset))])
        return [self._item(r) for r in rows]

    def models(self) -> list[str]:
        """The model ids outputs were made with, the most used first."""
        rows = self._execute("SELECT model FROM outputs WHERE model != '' GROUP BY model "
                             "ORDER BY count(*) DESC, model")
        return [str(r[0]) for r in rows]

    def _where(self, text: str, modality: str | None, min_rating: int) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if modality:
            clauses.append("modality = ?")
            args.append(modality)
        if min_rating:
            clauses.append("rating >= ?")
            args.append(int(min_rating))
        long_terms = []
        for term in _fold(text).split():
            if self.fts and len(term) >= 3:
                long_terms.append('"' + term.replace('"', '""') + '"')
            else:
                clauses.append("instr(search, ?) > 0")
                args.append(term)
        if long_terms:
            clauses.append("id IN (SELECT rowid FROM outputs_fts WHERE outputs_fts MATCH ?)")
            args.append(" AND ".join(long_terms))
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def recent(self, limit: int = 200, offset: int = 0,
               modality: str | None = None) -> list[HistoryItem]:
        return self.search("", modality, limit, offset)

    def get(self, item_id: int) -> HistoryItem | None:
        rows = self._execute(f"SELECT {_COLUMNS} FROM outputs WHERE id = ?", (int(item_id),))
        return self._item(rows[0]) if rows else None

    def find_path(self, path: str | Path) -> HistoryItem | None:
        rows = self._execute(f"SELECT {_COLUMNS} FROM outputs WHERE path = ?",
                             (self._key(path),))
        return self._item(rows[0]) if rows else None

    def __len__(self) -> int:
        return self.count()

    # ── changing ──

    def set_rating(self, item_id: int, rating: int) -> bool:
        """Rate an entry 0 (none) to 5; False when there is no such entry."""
        if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
            raise StudioError(f"A rating is a whole number from 0 to 5, not {rating!r}.")
        return self._change("UPDATE outputs SET rating = ? WHERE id = ?",
                            (rating, int(item_id))) > 0

    def remove(self, item_id: int, *, delete_file: bool = False) -> bool:
        """Forget an entry (and, when asked, delete its file); False when there was none."""
        item = self.get(item_id)
        if item is None:
            return False
        if delete_file:
            try:
                item.path.unlink(missing_ok=True)
            except OSError as exc:
                raise StudioError(f"Could not delete {item.path}: {exc.strerror or exc}.") from exc
        return self._change("DELETE FROM outputs WHERE id = ?", (int(item_id),)) > 0

    def restore(self, item: HistoryItem) -> int:
        """Put back an entry removed earlier (the Undo of a delete) with its id, rating and
        date; an entry indexed at its path since then is replaced. Returns the id."""
        request = dict(item.request)
        prompt, model = item.prompt or str(request.get("prompt") or ""), item.model
        with self._lock:
            self._change("DELETE FROM outputs WHERE id = ? OR path = ?",
                         (int(item.id), self._key(item.path)))
            rows = self._execute(
                "INSERT INTO outputs (id, path, modality, prompt, seed, model, created, "
                "rating, request, width, height, duration, source, search) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (int(item.id), self._key(item.path), item.modality, prompt,
                 _seed_text(item.seed), model,
                 item.created, int(item.rating),
                 json.dumps(request, ensure_ascii=False, default=str), item.width,
                 item.height, item.duration, item.source, _fold(f"{prompt}\n{model}")))
        return int(rows[0][0])

    def prune_missing(self) -> int:
        """Forget entries whose file is gone; returns how many."""
        rows = self._execute("SELECT id, path FROM outputs")
        gone = [int(r["id"]) for r in rows if not Path(r["path"]).is_file()]
        removed = 0
        for start in range(0, len(gone), 500):
            chunk = gone[start:start + 500]
            marks = ",".join("?" * len(chunk))
            removed += self._change(f"DELETE FROM outputs WHERE id IN ({marks})", chunk)
        return removed


def _seed_text(seed: object) -> str | None:
    """A seed as the history stores it: its decimal digits, exact at any size."""
    return str(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def _seed_of(value: object) -> int | None:
    """The stored seed back as an int (TEXT now; INTEGER in databases before version 2)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _migrate_seed_column(conn: sqlite3.Connection) -> None:
    """Version 1 kept seeds in an INTEGER column, where a 64-bit seed above 2**63 cannot
    go (SQLite would store it as a lossy REAL). Rebuild the table with a TEXT column,
    copying every row with its id (inside the caller's transaction: all or nothing);
    the full-text index is rebuilt by `_setup_fts`, since its triggers go with the old
    table."""
    columns = {r[1]: str(r[2]).upper() for r in conn.execute("PRAGMA table_info(outputs)")}
    if columns.get("seed", "TEXT") == "TEXT":
        return  # a new database, or one already migrated
    names = [n for n in columns if n != "seed"]
    log.info("history: storing seeds as text (64-bit seeds); migrating %s",
             conn.execute("SELECT count(*) FROM outputs").fetchone()[0])
    conn.execute("ALTER TABLE outputs RENAME TO outputs_v1")
    for index in ("outputs_created", "outputs_modality"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    conn.execute(f"CREATE TABLE outputs ({_OUTPUTS_COLUMNS})")
    listed = ", ".join(names)
    conn.execute(f"INSERT INTO outputs ({listed}, seed) SELECT {listed}, "
                 "CAST(seed AS TEXT) FROM outputs_v1")
    sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outputs_v1'"
                            ).fetchone()
    conn.execute("DROP TABLE outputs_v1")
    if sequence is not None:  # ids of deleted entries stay retired (AUTOINCREMENT)
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'outputs'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outputs', ?)",
                     (sequence[0],))


def _walk(folder: Path) -> Iterator[Path]:
    """Output files under a folder (not hidden files, not a walk's frame folders, not the
    init images and masks kept for recipes)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not d.endswith(FRAMES_SUFFIX) and d != INPUTS_FOLDER)
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in ALL_SUFFIXES:
                yield Path(root) / name
