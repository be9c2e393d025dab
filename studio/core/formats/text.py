"""Text outputs: Markdown files with the whole recipe in a front-matter block.

A saved text looks like this (every value is JSON, which is also valid YAML, so
Obsidian, Jekyll or any front-matter reader shows the fields; ours reads them back exactly):

    ---
    app: "Studio"
    app_version: "0.1.0"
    format: 1
    modality: "text"
    request:
      kind: "text"
      model: "builtin:smollm2"
      prompt: "Write a haiku about rain"
      stop: ["\\n\\n"]
      ...
    info: {"tokens": 42, "tokens_per_s": 11.3, "stopped_by": "eos"}
    ---
    <the text>

The body is the text as the artist sees it: a continuation's earlier text (the request's
`continuation`) followed by what this run generated. A saved conversation (a `chat` key in
the result's info, see studio.core.chat) keeps every turn in a `chat:` front-matter value
and has its transcript as the body. Lines are split on "\\n" only, and
every value sits on one line (JSON escapes newlines), so no value can end the block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

from studio.core import metadata
from studio.core.errors import RecipeError
from studio.core.outputs import write_new_output
from studio.core.recipes import Recipe
from studio.core.results import Result

FENCE = "---"
CHAT_KEY = "chat"  # the front-matter key of a saved conversation (studio.core.chat)
SUFFIX = ".md"
MAX_READ = 64 * 2**20  # a recipe file bigger than this is not one of ours


def _value(value: Any) -> str:
    """One-line JSON; falls back to ASCII escapes for text UTF-8 cannot hold (lone surrogates)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    return text


def front_matter(record: dict[str, Any]) -> str:
    """The front-matter block for a record; nested dicts named `request` are spelled out."""
    lines = [FENCE]
    for key, value in record.items():
        if key == "request" and isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_value(value)}")
    lines.append(FENCE)
    return "\n".join(lines) + "\n"


def document(result: Result) -> str:
    """The whole Markdown document for a text result (a conversation: its transcript)."""
    request = result.request
    info = metadata.json_safe(result.info)
    chat = info.pop(CHAT_KEY, None) if isinstance(info, dict) else None
    extra = {CHAT_KEY: chat} if isinstance(chat, dict) else {}
    record = metadata.studio_record(request, result.modality or "text", info=info, **extra)
    if extra:
        return front_matter(record) + transcript(chat)
    body = (getattr(request, "continuation", "") or "") + (result.text or "")
    return front_matter(record) + body


def transcript(chat: dict[str, Any]) -> str:
    """A saved conversation as people read it: the system prompt, then one section a turn
    (the front matter keeps the exact turns; this is for reading, not for parsing)."""
    parts: list[str] = []
    system = str(chat.get("system") or "").strip()
    if system:
        parts.append(f"**System:** {system}")
    for turn in chat.get("turns") or []:
        if not isinstance(turn, dict):
            continue
        who = "You" if turn.get("role") == "user" else "Assistant"
        parts.append(f"### {who}\n\n{str(turn.get('text', '')).strip()}")
    return "\n\n".join(parts) + "\n"


def save_text(result: Result, out_dir: Path) -> list[Path]:
    """Write the text as `out_dir/DAY/NNNNN-SEED-slug.md` (atomic, never overwriting)."""
    data = document(result).encode("utf-8")

    def write(f: BinaryIO) -> None:
        f.write(data)

    request = result.request
    seed = getattr(request, "seed", -1)
    path = write_new_output(Path(out_dir), seed, getattr(request, "prompt", ""), SUFFIX, write)
    return [path]


# ─── reading ─────────────────────────────────────────────────────────────────────────


def _parse_value(text: str) -> Any:
    """A JSON value, or the plain text for the YAML others may write (`title: My poem`)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """(front matter dict or None, body). Only a block that opens the file counts."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if not lines or lines[0].rstrip("\r") != FENCE:
        return None, text
    data: dict[str, Any] = {}
    nested: dict[str, Any] | None = None
    for i, raw in enumerate(lines[1:], start=1):
        line = raw.rstrip("\r")
        if line == FENCE:
            return data, "\n".join(lines[i + 1:])
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indented = line.startswith((" ", "\t"))
        key, sep, rest = line.strip().partition(":")
        if not sep:
            continue
        key = key.strip().strip("'\"")
        if indented and nested is not None:
            nested[key] = _parse_value(rest)
        elif rest.strip():
            data[key], nested = _parse_value(rest), None
        else:
            nested = data[key] = {}
    return None, text  # no closing fence: not front matter after all


def read_recipe(path: Path) -> Recipe:
    """The recipe in a Markdown/text file we wrote (or the front matter another tool wrote)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_READ:
        raise RecipeError(f"{path.name} is too large to be a text output ({size} bytes).")
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise RecipeError(f"{path.name} is not UTF-8 text.") from None
    front, body = split_front_matter(text)
    if front is None:
        raise RecipeError(f"{path.name} holds no recipe (it has no front-matter block).")
    raw = {"front_matter": front, "text": body}
    request = metadata.record_request(front)
    if request is not None:
        modality = str(front.get("modality") or request.get("kind") or "text")
        return Recipe("studio", modality, dict(request), "", raw)
    # someone else's front matter: keep what maps onto a text request
    notes = ["This file was not written by Studio; only its prompt could be carried over."]
    prompt = next((front[k] for k in ("prompt", "Prompt") if isinstance(front.get(k), str)), "")
    wanted = {"kind": "text", "prompt": prompt} if prompt else {}
    return Recipe("markdown", "text", wanted, "", raw, notes)
