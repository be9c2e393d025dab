"""X/Y/Z plots and prompt matrices: axes parsed as A1111 parses them, a plan of cells, a grid.

An axis names a request field (by its name, label, short label or flag: "steps", "CFG",
"sampler", "--seed"; plus "prompt s/r", "size" and "model") and its values as text:

    1-5            → 1, 2, 3, 4, 5          (whole-number fields)
    5-30 (+5)      → 5, 10, 15, 20, 25, 30  (a step; "(-5)" counts down)
    1-10 [4]       → 1, 4, 7, 10            (a count, evenly spread)
    a, b, "c, d"   → a, b, "c, d"           (a list; quotes keep commas)

Prompt S/R ("search/replace"): the first value is the text searched for in the prompt
(and the negative prompt); each value replaces it, the first one leaving the prompt as is.
A LoRA-weight axis ("LoRA weight: NAME", kept as "lora:NAME") sets that LoRA's weight in
the request's `loras` (adding it when the base lacks it); its values are numbers or ranges
(`0, 0.5, 1`, `0-1 (+0.25)`), labelled "LoRA NAME: 0.5". A prompt matrix (`a | b | c`)
renders every combination of the optional parts after the first. Each value is coerced
and checked by the request's own validation, so a bad value is that field's own
sentence, prefixed with the axis.

A `GridPlan` holds the cells' requests and the plot's recipe (`recipe()`); the recipe is
saved in the grid image (`studio info` shows it), and `GridPlan.from_recipe` rebuilds the
same plot from it. `render_grid` draws the labelled grid with Pillow. Plain Python.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from studio.core.errors import RequestError
from studio.core.fields import FieldSpec, check, specs
from studio.core.requests import Request, lora_entry, parse_lora
from studio.core.seeds import draw_seed, next_seed

RECIPE_KIND = "studio-grid"
RECIPE_VERSION = 1
MAX_CELLS = 10000
AXIS_NAMES = ("X", "Y", "Z")

# special axes (not one plain request field)
PROMPT_SR = "prompt_sr"
SIZE = "size"
MATRIX = "matrix"  # the prompt matrix's own two axes
LORA = "lora:"  # "lora:NAME": that LoRA's weight in `loras`
_LORA_AXIS = re.compile(r"\s*lora(?:\s*weight)?\s*[:=]\s*(.*?)\s*", re.IGNORECASE)

_INT_RANGE = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\s*\d+)\s*\))?\s*")
_INT_COUNT = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)\s*\[\s*(\d+)\s*\]\s*")
_NUM = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
_STEP = r"[+-]\s*(?:\d+(?:\.\d*)?|\.\d+)"
_FLOAT_RANGE = re.compile(rf"\s*({_NUM})\s*-\s*({_NUM})(?:\s*\(({_STEP})\s*\))?\s*")
_FLOAT_COUNT = re.compile(rf"\s*({_NUM})\s*-\s*({_NUM})\s*\[\s*(\d+)\s*\]\s*")
_SIZE = re.compile(r"\s*(\d+)\s*[x×*,]\s*(\d+)\s*")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-./]+", "", name.strip().lower())


def _number(text: str) -> float:
    return float(text.replace(" ", ""))


def split_values(text: str) -> list[str]:
    """A1111's list: comma-separated, spaces after commas dropped, double quotes keep commas."""
    if not isinstance(text, str) or not text.strip():
        return []
    rows = list(csv.reader([text.strip()], skipinitialspace=True))
    return [v.strip() for v in rows[0] if v.strip()] if rows else []


def _int_values(item: str) -> list[int] | None:
    """The whole numbers a range item stands for (None: not a range)."""
    m = _INT_COUNT.fullmatch(item)
    if m:
        start, end, n = int(_number(m[1])), int(_number(m[2])), int(m[3])
        if n <= 0:
            return []
        if n == 1:
            return [start]
        return [round(start + (end - start) * i / (n - 1)) for i in range(n)]
    m = _INT_RANGE.fullmatch(item)
    if m:
        start, end = int(_number(m[1])), int(_number(m[2]))
        step = int(_number(m[3])) if m[3] else 1
        if step == 0:
            return []
        return list(range(start, end + (1 if step > 0 else -1), step))
    return None


def _float_values(item: str) -> list[float] | None:
    m = _FLOAT_COUNT.fullmatch(item)
    if m:
        start, end, n = _number(m[1]), _number(m[2]), int(m[3])
        if n <= 0:
            return []
        if n == 1:
            return [start]
        return [round(start + (end - start) * i / (n - 1), 6) for i in range(n)]
    m = _FLOAT_RANGE.fullmatch(item)
    if m:
        start, end = _number(m[1]), _number(m[2])
        step = _number(m[3]) if m[3] else 1.0
        if step == 0 or (end - start) * step < 0:
            return []
        count = math.floor((end - start) / step + 1e-9) + 1
        return [round(start + i * step, 6) for i in range(count)]
    return None


def format_value(value: Any) -> str:
    """A value as a label shows it: 7.0 → "7", 0.25 → "0.25", text as is."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


# ─── fields an axis can name ──────────────────────────────────────────────────────────


@dataclass(frozen=True)
class AxisField:
    """What an axis varies: a request field (or a special one) and how it is labelled."""

    name: str  # request field name, or PROMPT_SR / SIZE / MATRIX
    label: str  # shown on the grid: "Steps", "CFG", "Prompt S/R"
    type: type = str


_SPECIAL = {
    "promptsr": PROMPT_SR, "sr": PROMPT_SR, "searchreplace": PROMPT_SR,
    "promptsearchreplace": PROMPT_SR, "size": SIZE, "checkpoint": "model",
    "checkpointname": "model", "model": "model", "seed": "seed", "prompt": "prompt",
    "cfg": "guidance", "cfgscale": "guidance", "sampler": "scheduler",
    "varseed": "variation_seed", "varstrength": "variation_strength",
    "negativeprompt": "negative",
}


def axis_fields(cls: type[Request]) -> dict[str, AxisField]:
    """Every field of `cls` an axis can vary, by field name (from the field metadata)."""
    found: dict[str, AxisField] = {
        "seed": AxisField("seed", "Seed", int), "model": AxisField("model", "Model", str),
        PROMPT_SR: AxisField(PROMPT_SR, "Prompt S/R", str),
    }
    table: dict[str, FieldSpec] = specs(cls)
    for name, s in table.items():
        if s.type in (int, float, str):
            found[name] = AxisField(name, s.short if len(s.short) <= len(s.label) else s.label,
                                    s.type)
    if "width" in table and "height" in table:
        found[SIZE] = AxisField(SIZE, "Size", tuple)
    return found


def lora_axis(name: str) -> AxisField:
    """The axis that varies LoRA `name`'s weight ("lora:NAME" in a recipe)."""
    return AxisField(f"{LORA}{name}", f"LoRA {name}", float)


def lora_axis_name(key: str) -> str | None:
    """The LoRA an axis key names ("lora:ink" or "LoRA weight: ink" → "ink"), else None."""
    m = _LORA_AXIS.fullmatch(key or "")
    return m[1] if m else None


def resolve_field(cls: type[Request], name: str) -> AxisField:
    """The axis field `name` means for `cls` ("CFG" → guidance); one sentence when none."""
    fields_ = axis_fields(cls)
    lora = lora_axis_name(name)
    if lora is not None and "loras" in specs(cls):
        if not lora or ":" in lora:
            raise RequestError(f"A LoRA-weight axis names one LoRA, like 'LoRA weight: style', "
                               f"not {name!r}.")
        return lora_axis(lora)
    wanted = _norm(name or "")
    table = specs(cls)
    target = None
    # the field's own name wins, then its flag, label and short label, then A1111's names
    for key in (lambda f, s: f, lambda f, s: s.flag, lambda f, s: s.label, lambda f, s: s.short):
        target = next((f for f, s in table.items() if _norm(key(f, s)) == wanted), None)
        if target is not None:
            break
    target = target or _SPECIAL.get(wanted)
    if target is not None and target in fields_:
        return fields_[target]
    kind = cls.kind or "this"
    choices = ", ".join(sorted(k.replace("_", " ") for k in fields_ if k != MATRIX))
    if "loras" in specs(cls):
        choices += ", LoRA weight: NAME"
    raise RequestError(f"Unknown grid axis field {name!r} for {kind} requests; "
                       f"choose one of {choices}.")


# ─── axes ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Axis:
    """One axis of a plot: its field, the values (coerced) and the label of each."""

    field: AxisField
    values: tuple[Any, ...]
    text: str  # the values as the user wrote them (what the recipe keeps)
    labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.field.label

    def __len__(self) -> int:
        return len(self.values)

    def apply(self, request: Request, index: int) -> Request:
        """`request` with this axis at its `index`-th value."""
        value = self.values[index]
        name = self.field.name
        if name == PROMPT_SR:
            search = self.values[0]
            changes = {"prompt": request.prompt.replace(search, value)}
            if isinstance(getattr(request, "negative", None), str):
                changes["negative"] = request.negative.replace(search, value)  # type: ignore[attr-defined]
            return request.replace(**changes)
        if name == SIZE:
            return request.replace(width=value[0], height=value[1])
        if name == MATRIX:
            parts = [p for p in (request.prompt, *value) if p]
            return request.replace(prompt=", ".join(parts))
        if name.startswith(LORA):
            return with_lora_weight(request, name[len(LORA):], value)
        return request.replace(**{name: value})


def with_lora_weight(request: Request, name: str, weight: float) -> Request:
    """`request` with LoRA `name` at `weight` in its `loras` (added last when absent)."""
    entries = list(getattr(request, "loras", ()))
    entry = lora_entry(name, weight)
    for i, old in enumerate(entries):
        if parse_lora(old)[0] == name:
            entries[i] = entry
            break
    else:
        entries.append(entry)
    return request.replace(loras=tuple(entries))


def _coerce_one(cls: type[Request], base: Request, af: AxisField, item: str,
                where: str) -> Any:
    """One value for field `af`, checked by the request's own validation."""
    if af.name == SIZE:
        m = _SIZE.fullmatch(item)
        if not m:
            raise RequestError(f"{where}: a size is WIDTHxHEIGHT (like 512x768), not {item!r}.")
        value: Any = (int(m[1]), int(m[2]))
        probe = base.replace(width=value[0], height=value[1])
    elif af.name == PROMPT_SR:
        return item
    elif af.name.startswith(LORA):
        try:
            value = float(item.replace(" ", ""))
        except ValueError:
            raise RequestError(f"{where}: a LoRA weight is a number, not {item!r}.") from None
        if not math.isfinite(value):
            raise RequestError(f"{where}: a LoRA weight is a finite number, not {item!r}.")
        probe = with_lora_weight(base, af.name[len(LORA):], value)
    else:
        data = base.to_dict()
        data[af.name] = item
        try:
            value = getattr(Request.from_dict(data), af.name)
        except RequestError as exc:
            raise RequestError(f"{where}: {exc}") from None
        probe = base.replace(**{af.name: value})
    try:
        probe.validate()
        s = specs(cls).get(af.name)
        if s is not None and s.type in (int, float):  # the field's own range, checked
            check(probe, af.name)  # even where the request's validate() forgets it
    except RequestError as exc:
        raise RequestError(f"{where}: {exc}") from None
    return value


def parse_axis(cls: type[Request], base: Request, field_name: str, text: str,
               which: str = "X") -> Axis:
    """Parse one axis ("steps", "5-30 (+5)") against `base`; one sentence for bad input."""
    af = resolve_field(cls, field_name)
    where = f"The {which} axis ({af.label})"
    items = split_values(text)
    if not items:
        raise RequestError(f"{where} has no values.")
    values: list[Any] = []
    for item in items:
        expanded: Sequence[Any] | None = None
        if af.type is int:
            expanded = _int_values(item)
        elif af.type is float:
            expanded = _float_values(item)
        if expanded is not None:
            if not expanded:
                raise RequestError(f"{where}: the range {item!r} gives no values.")
            values.extend(_coerce_one(cls, base, af, str(v), where) for v in expanded)
        else:
            values.append(_coerce_one(cls, base, af, item, where))
    if af.name == PROMPT_SR:
        search = values[0]
        negative = getattr(base, "negative", "")
        if search not in base.prompt and search not in (negative or ""):
            raise RequestError(f"{where}: {search!r} is not in the prompt or the negative "
                               f"prompt.")
    if af.name.startswith(LORA):
        _check_no_tag(base, af.name[len(LORA):], where)
    if af.name == "seed":  # a random seed in an axis is drawn once, so the plot replays
        values = [v if v != -1 else base.replace(seed=-1).resolved().seed for v in values]
    labels = tuple(_label(af, v) for v in values)
    return Axis(af, tuple(values), text, labels)


def _check_no_tag(base: Request, name: str, where: str) -> None:
    """A `<lora:NAME:w>` tag in the prompt wins over `loras` (as A1111 reads it), so an
    axis over that LoRA's weight would change nothing: one sentence instead."""
    from studio.core.errors import StudioError
    from studio.core.prompts import extract_networks

    try:
        tags = extract_networks(base.prompt).loras
    except StudioError:  # the prompt's own sentence comes when it renders
        return
    if any(tag.name == name for tag in tags):
        raise RequestError(f"{where}: the prompt's <lora:{name}:…> tag sets its weight; take "
                           f"the tag out (or vary it with Prompt S/R).")


def _label(af: AxisField, value: Any) -> str:
    if af.name == PROMPT_SR:
        return str(value)
    if af.name == "model":
        from studio.core.metadata import model_display_name

        return f"{af.label}: {model_display_name(str(value))}"
    return f"{af.label}: {format_value(value)}"


# ─── prompt matrix ────────────────────────────────────────────────────────────────────


def prompt_matrix_parts(prompt: str) -> list[str]:
    """`a | b | c` → ["a", "b", "c"]; one sentence when there is nothing to combine."""
    parts = [p.strip() for p in (prompt or "").split("|")]
    if len(parts) < 2:
        raise RequestError("A prompt matrix needs optional parts after '|' (like 'a cat | "
                           "in the snow | at night').")
    if len(parts) > 13:
        raise RequestError(f"A prompt matrix of {len(parts) - 1} optional parts makes "
                           f"{2 ** (len(parts) - 1)} pictures; use at most 12.")
    return parts


def _matrix_axis(parts: Sequence[str], label: str) -> Axis:
    """Every subset of `parts` (bit i of the index includes part i), A1111's order."""
    values = tuple(tuple(p for j, p in enumerate(parts) if i >> j & 1)
                   for i in range(2 ** len(parts)))
    labels = tuple("\n".join(("+ " if p in v else "- ") + p for p in parts) for v in values)
    return Axis(AxisField(MATRIX, label), values, " | ".join(parts), labels)


# ─── the plan ─────────────────────────────────────────────────────────────────────────


def resolve_all(request: Request) -> Request:
    """Every random seed drawn now, even one unused at the base (a variation seed where the
    strength is 0): an axis may turn it on, and the plot's recipe must replay it."""
    changes = {f.name: draw_seed() for f in dataclasses.fields(request)
               if f.name.endswith("seed") and getattr(request, f.name) == -1}
    return request.replace(**changes) if changes else request


@dataclass(frozen=True)
class Cell:
    """One cell: its place on the grid (x, y, z), its copy number and its request."""

    x: int
    y: int
    z: int
    copy: int
    request: Request


@dataclass(frozen=True)
class GridPlan:
    """The cells of one plot and what it takes to draw and replay it."""

    base: Request  # resolved: the seed is drawn once for the whole plot
    axes: tuple[Axis | None, Axis | None, Axis | None]
    count: int = 1  # batch count: copies of each cell, seeds + batch size apart
    matrix: bool = False
    cells: tuple[Cell, ...] = field(default=())

    @classmethod
    def from_axes(cls, base: Request, x: tuple[str, str] | None = None,
                  y: tuple[str, str] | None = None, z: tuple[str, str] | None = None,
                  *, count: int = 1) -> GridPlan:
        """A plot of `base` over up to three axes, each (field, values text)."""
        base.validate()
        base = resolve_all(base)
        axes = tuple(parse_axis(type(base), base, spec[0], spec[1], which)
                     if spec is not None else None
                     for spec, which in zip((x, y, z), AXIS_NAMES, strict=True))
        if not any(axes):
            raise RequestError("A grid needs at least one axis.")
        return cls._build(base, axes, count, False)  # type: ignore[arg-type]

    @classmethod
    def prompt_matrix(cls, base: Request, *, count: int = 1) -> GridPlan:
        """A1111's prompt matrix of `base.prompt` (`a | b | c`)."""
        base.validate()
        parts = prompt_matrix_parts(base.prompt)
        base = resolve_all(base).replace(prompt=parts[0])
        optional = parts[1:]
        n_cols = len(optional) - len(optional) // 2  # the first parts label the columns
        x = _matrix_axis(optional[:n_cols], "Prompt")
        y = _matrix_axis(optional[n_cols:], "Prompt") if optional[n_cols:] else None
        return cls._build(base, (x, y, None), count, True)

    @classmethod
    def _build(cls, base: Request, axes: tuple[Axis | None, Axis | None, Axis | None],
               count: int, matrix: bool) -> GridPlan:
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise RequestError("The batch count must be a whole number from 1 to 1000.")
        sizes = [len(a) if a is not None else 1 for a in axes]
        total = math.prod(sizes) * count
        if total > MAX_CELLS:
            raise RequestError(f"This grid has {total} pictures; the most is {MAX_CELLS}.")
        step = max(1, int(getattr(base, "batch_size", 1) or 1))
        cells: list[Cell] = []
        for zi, yi, xi in itertools.product(*(range(n) for n in reversed(sizes))):
            request = base
            if matrix:  # parts are appended in order: the columns' parts, then the rows'
                for axis, i in ((axes[0], xi), (axes[1], yi)):
                    if axis is not None:
                        request = axis.apply(request, i)
            else:
                for axis, i in zip(axes, (xi, yi, zi), strict=True):
                    if axis is not None:
                        request = axis.apply(request, i)
            try:
                request.validate()
            except RequestError as exc:
                raise RequestError(f"The grid cell ({_where(axes, xi, yi, zi)}): {exc}") from None
            request = request.resolved()
            for copy in range(count):
                seeded = request.replace(seed=next_seed(request.seed, copy * step)) \
                    if copy else request
                cells.append(Cell(xi, yi, zi, copy, seeded))
        return cls(base, axes, count, matrix, tuple(cells))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, sub-grids)."""
        x, y, z = (len(a) if a is not None else 1 for a in self.axes)
        return x, y, z

    def first_cells(self) -> list[Cell]:
        """The cell of each grid position that the grid image shows (copy 0)."""
        return [c for c in self.cells if c.copy == 0]

    def recipe(self) -> dict[str, Any]:
        """Everything needed to replay the plot (the base request is already resolved)."""
        axes = []
        for name, axis in zip(AXIS_NAMES, self.axes, strict=True):
            if axis is not None and not self.matrix:
                axes.append({"axis": name, "field": axis.field.name, "values": axis.text})
        recipe: dict[str, Any] = {"kind": RECIPE_KIND, "version": RECIPE_VERSION,
                                  "base": self.base.to_dict(), "axes": axes,
                                  "count": self.count, "shape": list(self.shape)}
        if self.matrix:
            parts = [a.text for a in self.axes[:2] if a is not None]
            recipe["prompt_matrix"] = " | ".join([self.base.prompt, *parts])
        return recipe

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any]) -> GridPlan:
        """The plot a `recipe()` describes (one sentence when it is not one)."""
        if not isinstance(recipe, Mapping) or recipe.get("kind") != RECIPE_KIND:
            raise RequestError("This is not a grid recipe.")
        base_data = recipe.get("base")
        if not isinstance(base_data, dict):
            raise RequestError("This grid recipe has no base request.")
        base = Request.from_dict(base_data)
        count = recipe.get("count", 1)
        if recipe.get("prompt_matrix"):
            return cls.prompt_matrix(base.replace(prompt=str(recipe["prompt_matrix"])),
                                     count=count)
        specs_: dict[str, tuple[str, str]] = {}
        for entry in recipe.get("axes") or []:
            specs_[str(entry.get("axis", "X")).lower()] = (str(entry["field"]),
                                                           str(entry["values"]))
        return cls.from_axes(base, specs_.get("x"), specs_.get("y"), specs_.get("z"),
                             count=count)


def _where(axes: Sequence[Axis | None], *index: int) -> str:
    return ", ".join(a.labels[i].replace("\n", " ") for a, i in zip(axes, index, strict=True)
                     if a is not None)


# ─── drawing ──────────────────────────────────────────────────────────────────────────

PAD = 8
GAP = 16  # between sub-grids
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
FAINT = (170, 170, 170)


def _font(cell: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(10, min(28, cell // 8)))


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Any) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=2)
    return int(right - min(left, 0)), int(bottom - min(top, 0))


def render_grid(plan: GridPlan, images: Mapping[tuple[int, int, int], Any]) -> Image.Image:
    """The labelled grid: column labels above, row labels to the left, one sub-grid per Z
    value side by side under its own label. `images[(x, y, z)]` is an (H, W, 3) uint8 array
    or a PIL image; cells are as large as the largest picture (smaller ones centred)."""
    pictures = {k: v if isinstance(v, Image.Image) else Image.fromarray(v)
                for k, v in images.items()}
    if not pictures:
        raise RequestError("The grid has no pictures to draw.")
    cw = max(p.width for p in pictures.values())
    ch = max(p.height for p in pictures.values())
    nx, ny, nz = plan.shape
    ax, ay, az = plan.axes
    font = _font(min(cw, ch) * 2)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def wrap(text: str, width: int) -> str:  # break at spaces so a label fits its cell
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                trial = f"{line} {word}" if line else word
                if line and _text_size(probe, trial, font)[0] > width - 4:
                    lines.append(line)
                    line = word
                else:
                    line = trial
            lines.append(line)
        return "\n".join(lines)

    texts: dict[int, list[str]] = {}
    for k, axis, room in ((0, ax, cw), (1, ay, None), (2, az, None)):
        if axis is not None:
            texts[k] = [wrap(t, room) if room and axis.field.name != MATRIX else t
                        for t in axis.labels]

    def sizes(k: int) -> list[tuple[int, int]]:
        return [_text_size(probe, t, font) for t in texts.get(k, [])]

    xs, ys, zs = sizes(0), sizes(1), sizes(2)
    top = max((h for _w, h in xs), default=0) + 2 * PAD if ax is not None else 0
    left = max((w for w, _h in ys), default=0) + 2 * PAD if ay is not None else 0
    ztop = max((h for _w, h in zs), default=0) + 2 * PAD if az is not None else 0
    sub_w, sub_h = left + nx * cw, top + ny * ch
    width = nz * sub_w + (nz - 1) * GAP
    height = ztop + sub_h
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)

    def label(k: int, axis: Axis, i: int, box: tuple[int, int, int, int]) -> None:
        text = texts[k][i]
        x0, y0, x1, y1 = box
        if axis.field.name == MATRIX:  # the parts in, in ink; the parts out, faint
            y = y0 + PAD
            for line in text.split("\n"):  # one line per part
                w, h = _text_size(draw, line, font)
                colour = INK if line.startswith("+") else FAINT
                draw.text((x0 + (x1 - x0 - w) // 2, y), line, fill=colour, font=font)
                y += h + 2
            return
        w, h = _text_size(draw, text, font)
        draw.multiline_text((x0 + (x1 - x0 - w) // 2, y0 + (y1 - y0 - h) // 2), text, fill=INK,
                            font=font, spacing=2, align="center")

    for zi in range(nz):
        ox = zi * (sub_w + GAP)
        if az is not None:
            label(2, az, zi, (ox, 0, ox + sub_w, ztop))
        for xi in range(nx):
            if ax is not None:
                label(0, ax, xi, (ox + left + xi * cw, ztop, ox + left + (xi + 1) * cw, ztop + top))
        for yi in range(ny):
            if ay is not None:
                label(1, ay, yi, (ox, ztop + top + yi * ch, ox + left, ztop + top + (yi + 1) * ch))
            for xi in range(nx):
                picture = pictures.get((xi, yi, zi))
                if picture is None:
                    continue
                px = ox + left + xi * cw + (cw - picture.width) // 2
                py = ztop + top + yi * ch + (ch - picture.height) // 2
                canvas.paste(picture.convert("RGB"), (px, py))
    return canvas


__all__ = [
    "LORA", "MATRIX", "PROMPT_SR", "RECIPE_KIND", "SIZE", "Axis", "AxisField", "Cell",
    "GridPlan", "axis_fields", "describe_recipe", "format_value", "grid_recipe_in",
    "lora_axis", "lora_axis_name", "parse_axis", "plot_recipe", "prompt_matrix_parts",
    "render_grid", "resolve_field", "split_values", "with_lora_weight",
]


def describe_recipe(recipe: Mapping[str, Any]) -> str:
    """A plot recipe in one line: "2×2 plot: X Steps = 2, 4 · Y CFG = 3, 7" (the axes as
    typed), or the prompt matrix it combines."""
    shape = "×".join(str(n) for n in recipe.get("shape", []) if n != 1) or "1"
    count = recipe.get("count", 1)
    copies = f", {count} of each" if isinstance(count, int) and count > 1 else ""
    if recipe.get("prompt_matrix"):
        return f"{shape} prompt matrix{copies}: {recipe['prompt_matrix']}"
    kind = _base_class(recipe)
    parts = []
    for entry in recipe.get("axes") or []:
        name = str(entry.get("field", ""))
        try:
            label = resolve_field(kind, name).label
        except RequestError:
            label = name
        parts.append(f"{entry.get('axis', '?')} {label} = {entry.get('values', '')}")
    return f"{shape} plot{copies}: " + " · ".join(parts)


def _base_class(recipe: Mapping[str, Any]) -> type[Request]:
    """The request class of a recipe's base (an image request when it does not say)."""
    from studio.core.requests import REQUEST_TYPES, ImageRequest

    base = recipe.get("base")
    kind = base.get("kind") if isinstance(base, Mapping) else None
    return REQUEST_TYPES.get(str(kind), ImageRequest)


def plot_recipe(path: str | Path) -> dict[str, Any]:
    """The plot recipe saved in a grid image (or a JSON file holding one), to replay it."""
    import json

    from studio.core.errors import RecipeError
    from studio.core.recipes import read_recipe

    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RecipeError(f"Could not read a grid recipe from {path.name}: {exc}.") from None
    else:
        data = grid_recipe_in(read_recipe(path).raw)
    if not isinstance(data, dict) or data.get("kind") != RECIPE_KIND:
        raise RecipeError(f"{path.name} holds no grid recipe.")
    return data


def grid_recipe_in(raw: Any) -> dict[str, Any] | None:
    """The plot recipe in a read recipe's raw record (`Recipe.raw` of a grid image), or
    None for any other file: how a dropped grid image fills the Grid section again."""
    import json

    chunks = raw.get("chunks", {}) if isinstance(raw, dict) else {}
    text = chunks.get("studio", "") if isinstance(chunks, dict) else ""
    try:
        record = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return None
    info = record.get("info") if isinstance(record, dict) else None
    data = info.get("grid") if isinstance(info, dict) else None
    return data if isinstance(data, dict) and data.get("kind") == RECIPE_KIND else None
