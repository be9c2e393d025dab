"""ComfyUI's `extra_model_paths.yaml`: the other folders a ComfyUI install reads models from.

ComfyUI loads this file from its root at start-up; each group in it names a `base_path`
(`~` and environment variables expanded, relative to the file's folder) and, per kind of
model (`loras`, `embeddings`, ...), one path a line, relative to that base. Artists point it
at their A1111 folders or a shared model store, so Studio reads the LoRA and embedding
folders it names too. The file is read with `yaml.safe_load` (data only, never code); a
file that cannot be read is one sentence in the scan's issues, and its folders are left out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

FILE_NAME = "extra_model_paths.yaml"
MAX_BYTES = 1_000_000  # a paths file is a few lines; anything bigger is not one
_SPECIAL = ("base_path", "base_paths", "is_default")


def _expand(text: str) -> str:
    return os.path.expanduser(os.path.expandvars(text.strip()))


def _lines(value: object) -> list[str] | None:
    """The paths a value names (a block of lines, or a list); None: not paths."""
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def extra_paths(file: Path, kinds: Sequence[str], issues: list[str] | None = None
                ) -> list[Path]:
    """The folders a ComfyUI paths file names for these kinds ("loras", "embeddings"),
    as absolute paths, in the file's order; [] with one line in `issues` for a bad file."""
    file = Path(file)

    def bad(reason: str) -> list[Path]:
        if issues is not None:
            line = (f"{file}: not read ({reason}); Studio leaves out the folders it names "
                    "until it is fixed.")
            if line not in issues:
                issues.append(line)
        return []

    try:
        if file.stat().st_size > MAX_BYTES:
            return bad("it is too big to be ComfyUI's model paths file")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return bad(getattr(exc, "strerror", None) or str(exc))
    try:
        import yaml  # type: ignore[import-untyped]  # no stubs installed
    except ImportError:  # PyYAML comes with huggingface_hub; without it, say so
        return bad("PyYAML is not installed")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return bad(f"it is not valid YAML{where}")
    if data is None:
        return []
    if not isinstance(data, dict):
        return bad("it should hold groups of paths, one name each")
    out: list[Path] = []
    for group, conf in data.items():
        if conf is None:
            continue
        if not isinstance(conf, dict):
            return bad(f"the group {group!r} should hold paths, one per kind of model")
        bases = _lines(conf.get("base_path", "")) or []
        bases += _lines(conf.get("base_paths", "")) or []
        roots = [file.parent / _expand(b) for b in bases] or [file.parent]
        for kind in kinds:
            if kind not in conf or kind in _SPECIAL:
                continue
            lines = _lines(conf[kind])
            if lines is None:
                return bad(f"{group}.{kind} should be a folder, or folders one a line")
            for line in lines:
                for root in roots:
                    path = Path(os.path.normpath(root / _expand(line)))
                    if path not in out:
                        out.append(path)
    return out
