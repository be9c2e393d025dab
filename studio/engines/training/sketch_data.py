"""The built-in sketch model's data: clip art and emoji at 64×64 on white, with captions.

Sources (all installed as Debian packages, see the model card in `models/sketch/`):
- `openclipart-png`: public-domain clip art in category folders; the title comes from the
  file name, the category from the folders ("chemistry flask, science").
- `fonts-noto-color-emoji`: Noto Color Emoji glyphs rendered with Pillow, captioned with
  their CLDR English names and keywords (`unicode-cldr-core`, `annotations/en.xml`).
- `ruby-gemojione`: EmojiOne's 64 px PNGs of the same emoji (flat art, CC-BY-SA 4.0), with
  the same captions: a second drawing of the core nouns' emoji (`NamedEmoji.core`), birds
  and fish too, which clip art draws badly and Noto draws once or twice.
- `fonts-dejavu-core`: DejaVu Sans' five-pointed star symbols (★ ☆ ✩ … ✰), drawn in gold
  with a darker outline, captioned with their Unicode names: the two star emoji and
  fourteen clip art stars were all the stars there were.
- `fonts-symbola`: Symbola's line drawings of birds and fish (🐦 🐤 🕊 🦅, 🐟 🐠 🐡), their
  insides painted gold, each also mirrored: the one bird emoji, two fish emoji and the clip
  art (swans at night, eagle heads, flying gulls a few pixels thick) drew birds and fish
  the model could not learn.

Colour is what an artist asks for first, and clip art rarely comes in every colour, so
every item also comes recoloured into named colours with the colour word in the caption
("a blue car"). A fixed list of colour × object pairs (`HELDOUT`) never appears in any
caption, word for word: those are the prompts the benchmark asks.

The rendered set is cached under the Studio cache (`core.store`), keyed by what it was
built from, so a second run (or the benchmark) does not render again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from studio.core.store import Store
from studio.core.training import TrainingError

SIZE = 64
FIT = 56  # the object's longest side inside the 64×64 square
CLIPART = Path("/usr/share/openclipart/png")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SYMBOLA = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")
CLDR_EN = Path("/usr/share/unicode/cldr/common/annotations/en.xml")
_GEMS = Path("/usr/share/rubygems-integration/all/gems")
#: EmojiOne's PNGs as `ruby-gemojione` installs them (its version is in the folder's name)
EMOJIONE = next(iter(sorted(_GEMS.glob("gemojione-*/assets/png"))),
                _GEMS / "gemojione-3.3.0/assets/png")
VERSION = 9  # bump when rendering or captions change (the cache key includes it)

# Named colours the recolouring paints with (RGB); their hues are far apart so that the
# benchmark's dominant-hue test can tell them apart.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 25, 30),
    "orange": (245, 130, 15),
    "yellow": (245, 215, 20),
    "green": (35, 165, 55),
    "blue": (30, 80, 220),
    "purple": (135, 45, 185),
}
COLOUR_NAMES = tuple(COLOURS)
COLOUR_WORDS = set(COLOURS) | {"pink", "brown", "black", "white", "grey", "gray", "light",
                               "dark"}

# Objects the benchmark asks for, each with the emoji that show it. Their recoloured
# captions use this noun ("a blue car" for 🚗, whose CLDR name is "automobile").
EVAL_OBJECTS: dict[str, tuple[str, ...]] = {
    "heart": ("❤", "💙", "💚", "💛", "💜", "🧡"),
    "car": ("🚗", "🚙", "🚘"),
    "star": ("⭐", "🌟"),
    "apple": ("🍎", "🍏"),
    "fish": ("🐟", "🐠", "🐡"),
    "tree": ("🌳", "🌲"),
    "house": ("🏠", "🏡"),
    "umbrella": ("☂", "☔", "🌂"),
    "balloon": ("🎈",),
    "flower": ("🌼", "🌸", "🌷"),
    "bird": ("🐦", "🕊", "🦅"),  # not 🐤: a chick is a round blob, which is no bird to learn
    "cat": ("🐈",),
}


#: the core vocabulary: simple nouns (the benchmark's objects and 32 more emoji with a
#: one- or two-word CLDR name) whose samples are drawn `CORE_WEIGHT` times as often. A 6 M
#: parameter model trained for an hour or two on a CPU cannot learn thousands of shapes; a
#: few dozen drawn often enough to be learnt are worth more to an artist than all of them
#: half-learnt. Clip art whose title names one of these takes that noun in its captions.
CORE_NOUNS: tuple[str, ...] = (*EVAL_OBJECTS, "sun", "cloud", "dog", "rocket", "snowman",
                               "mushroom", "guitar", "crown", "lemon", "banana", "strawberry",
                               "key", "bell", "butterfly", "snail", "turtle", "elephant",
                               "duck", "sailboat", "airplane", "bicycle", "rainbow", "pencil",
                               "kite", "tomato", "carrot", "cactus", "penguin", "owl", "whale",
                               "octopus", "anchor")
CORE_WEIGHT = 6.0
#: … up to this many images per noun: beyond it the noun's share stays the same
#: (openclipart has 38 trees and 36 flowers; they would otherwise crowd out the nouns
#: with a few images, such as the fish: 8 clip art, 2 emoji and 6 font drawings)
CORE_CAP = 24
#: emoji (one clean glyph, a curated name) are drawn twice as often as clip art, whose
#: captions are file names
EMOJI_WEIGHT = 2.0




@dataclass(frozen=True)
class FontDrawings:
    """Clean drawings of one core noun from a monochrome font: for the objects whose emoji
    are one or two and whose clip art is mixed (`build(extras=True)` adds them)."""

    font: Path
    package: str  # the Debian package the font comes in
    noun: str
    chars: str
    #: line art whose inside is painted too (Symbola's animals are outlines)
    filled: bool = False
    #: also drawn facing the other way (animals face both ways; stars are symmetric)
    mirrored: bool = False

    @property
    def count(self) -> int:
        """How many images it adds when its font is installed."""
        return len(self.chars) * (2 if self.mirrored else 1) if self.font.is_file() else 0


FONT_DRAWINGS: tuple[FontDrawings, ...] = (
    # the five-pointed stars (DejaVu's other stars have four, six or more points)
    FontDrawings(DEJAVU, "fonts-dejavu-core", "star", "★☆✩✪✫✬✭✮✯✰"),
    # looked at one by one: Symbola's other birds are owls, ducks, penguins and poultry
    FontDrawings(SYMBOLA, "fonts-symbola", "bird", "🐦🐤🕊🦅", filled=True, mirrored=True),
    FontDrawings(SYMBOLA, "fonts-symbola", "fish", "🐟🐠🐡", filled=True, mirrored=True),
)


def _heldout() -> tuple[tuple[str, str], ...]:
    """Two colours per benchmark object (each colour four times in all): never captioned."""
    pairs = []
    for i, noun in enumerate(EVAL_OBJECTS):
        for k in (0, 3):
            pairs.append((COLOUR_NAMES[(i + k) % len(COLOUR_NAMES)], noun))
    return tuple(pairs)


HELDOUT: tuple[tuple[str, str], ...] = _heldout()


def colour_caption(colour: str, noun: str) -> str:
    """The caption of a recoloured item, and the form of the benchmark's prompts."""
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {noun}"


HELDOUT_PROMPTS: tuple[str, ...] = tuple(colour_caption(c, n) for c, n in HELDOUT)
_HELDOUT_PHRASES = tuple(f"{c} {n}" for c, n in HELDOUT)


def held_out(caption: str) -> bool:
    """Whether a caption contains a held-out colour × object phrase (then it is not used)."""
    low = caption.lower()
    return any(p in low for p in _HELDOUT_PHRASES)


@dataclass
class SketchData:
    """The rendered set: one row per source image; `entries` say what a training sample is.

    entries[i] = (image row, colour index or -1 for the original colours, caption index).
    """

    images: np.ndarray  # (N, 64, 64, 3) uint8, on white
    masks: np.ndarray  # (N, 64, 64) bool: the object's pixels
    nouns: list[str]  # the short name recolour captions use
    sources: list[str]  # "emoji:🚗" (Noto) / "emoji:🚗:emojione" / "clipart:…/car.png"
    captions: list[str]  # every distinct caption (index 0 is "", the unconditional one)
    entries: np.ndarray  # (M, 3) int32

    def summary(self) -> dict[str, int]:
        emoji = sum(1 for s in self.sources if s.startswith("emoji:"))
        recoloured = int((self.entries[:, 1] >= 0).sum())
        return {"images": len(self.sources), "emoji": emoji, "clipart": len(self.sources) - emoji,
                "samples": len(self.entries), "recoloured": recoloured,
                "captions": len(self.captions)}

    def weights(self) -> np.ndarray:
        """How often each entry is drawn in training, relative to a clip art sample
        (`CORE_WEIGHT` up to `CORE_CAP` images a noun, `EMOJI_WEIGHT`); sums to 1."""
        core = set(CORE_NOUNS)
        count = Counter(n for n in self.nouns if n in core)
        row_w = np.array([CORE_WEIGHT * min(1.0, CORE_CAP / count[noun]) if noun in core else
                          EMOJI_WEIGHT if src.startswith("emoji:") else 1.0
                          for noun, src in zip(self.nouns, self.sources, strict=True)])
        w = row_w[self.entries[:, 0]]
        return w / w.sum()

    def sample_pixels(self, rows: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """The images of `rows`, recoloured where `colours` >= 0 (float32 in [-1, 1], NCHW)."""
        img = self.images[rows].astype(np.float32) / 255.0
        out = img.copy()
        for j, c in enumerate(colours):
            if c >= 0:
                out[j] = recolour(img[j], self.masks[rows[j]], COLOUR_NAMES[int(c)])
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2) * 2.0 - 1.0)


def recolour(img: np.ndarray, mask: np.ndarray, colour: str) -> np.ndarray:
    """Paint the object's pixels in `colour`, keeping its shading (dark outlines stay dark,
    light areas take the full colour); the white background stays white. `img` is float
    HxWx3 in [0, 1]."""
    rgb = np.array(COLOURS[colour], np.float32) / 255.0
    lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
    painted = rgb * (0.2 + 0.8 * shade(lum, mask, floor=0.2)[..., None])
    return np.where(mask[..., None], painted, img).astype(np.float32)


def shade(lum: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    """Luminance over the object's brightest tenth (its 90th percentile, at least `floor`),
    clipped to [0, 1]: the shading `recolour` keeps, and the object judge reads."""
    inside = lum[mask]
    top = float(np.percentile(inside, 90)) if inside.size else 1.0
    return np.clip(lum / max(top, floor), 0.0, 1.0)


# --------------------------------------------------------------------------- sources


def cldr_annotations(path: Path = CLDR_EN) -> dict[str, tuple[str, list[str]]]:
    """emoji → (its name, its keywords) from the CLDR English annotations."""
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    for node in ET.parse(path).getroot().iter("annotation"):
        cp = node.get("cp") or ""
        text = (node.text or "").strip()
        if node.get("type") == "tts":
            names[cp] = text
        else:
            keywords[cp] = [k.strip() for k in text.split("|") if k.strip()]
    return {cp: (name, keywords.get(cp, [])) for cp, name in names.items()}


class NamedEmoji(NamedTuple):
    """An emoji the data draws, with the noun and the captions its images take."""

    cp: str
    noun: str  # the benchmark's noun for its objects ("car" for 🚗), else its name's words
    captions: tuple[str, str]  # its name; "a car" for the benchmark's, else name + keywords

    @property
    def core(self) -> bool:
        """EmojiOne draws only the core nouns a second time: a second drawing of a shape
        the model must learn helps it; one of the thousand others dilutes the draws."""
        return self.noun in CORE_NOUNS


def named_emoji(emoji: list[str] | None = None) -> list[NamedEmoji]:
    """The emoji the data draws: those in `emoji` (None: every emoji) that CLDR names."""
    if not CLDR_EN.is_file():
        return []
    notes = cldr_annotations()
    canonical = {cp: noun for noun, cps in EVAL_OBJECTS.items() for cp in cps}
    out = []
    for cp in emoji if emoji is not None else [cp for cp in notes if _is_emoji(cp)]:
        name, kws = notes.get(cp, ("", []))
        if name:
            noun = canonical.get(cp) or _clean_noun(name)
            out.append(NamedEmoji(cp, noun, (name, f"a {noun}" if cp in canonical else
                                             ", ".join([name, *kws[:3]]))))
    return out


def _is_emoji(cp: str) -> bool:
    first = ord(cp[0])
    if 0x1F3FB <= first <= 0x1F3FF or 0x1F1E6 <= first <= 0x1F1FF:  # skin tones, flags' parts
        return False
    return first >= 0x2190 and unicodedata.category(cp[0]) in ("So", "Sm", "Sk")


def _fit(rgba: object) -> tuple[np.ndarray, np.ndarray] | None:
    """Crop a PIL RGBA image to its object, fit it in FIT px, centre it on 64×64 white.
    Returns (RGB uint8, mask) or None when there is nothing visible."""
    from PIL import Image

    im = rgba  # type: ignore[assignment]
    arr = np.asarray(im)
    alpha = arr[..., 3]
    white = (arr[..., :3].min(axis=-1) > 245)
    visible = (alpha > 24) & ~white if alpha.min() == 255 else alpha > 24
    ys, xs = np.nonzero(visible)
    if len(xs) < 8:
        return None
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    crop = im.crop(box)  # type: ignore[attr-defined]
    w, h = crop.size
    scale = FIT / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    crop = crop.resize((nw, nh), Image.LANCZOS)
    canvas = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 0))
    canvas.paste(crop, ((SIZE - nw) // 2, (SIZE - nh) // 2))
    c = np.asarray(canvas).astype(np.float32) / 255.0
    a = c[..., 3:4]
    rgb = c[..., :3] * a + (1.0 - a)
    mask = (c[..., 3] > 0.5) & (rgb.min(axis=-1) < 0.96)
    if mask.sum() < 8:
        return None
    return (rgb * 255.0 + 0.5).astype(np.uint8), mask


def emojione_file(cp: str, folder: Path | None = None) -> Path:
    """EmojiOne's file for an emoji (in `EMOJIONE`): its code points in upper-case hex
    joined by "-", variation selectors left out ("2764.png" for ❤️)."""
    return (folder or EMOJIONE) / ("-".join(f"{ord(c):04X}" for c in cp if c != "\ufe0f") + ".png")


def read_emojione(cp: str, folder: Path | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """EmojiOne's drawing of an emoji, fitted like the clip art (None when it has none)."""
    from PIL import Image

    path = emojione_file(cp, folder)
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            return _fit(im.convert("RGBA"))
    except (OSError, ValueError):
        return None


def render_emoji(cp: str, font: object) -> tuple[np.ndarray, np.ndarray] | None:
    """One Noto Color Emoji glyph, fitted like the clip art (None when the font lacks it)."""
    from PIL import Image, ImageDraw

    text = cp + "\ufe0f" if len(cp) == 1 else cp
    im = Image.new("RGBA", (200, 160), (255, 255, 255, 0))
    ImageDraw.Draw(im).text((8, 8), text, font=font, embedded_color=True)  # type: ignore[arg-type]
    arr = np.asarray(im)
    if arr[..., 3].max() == 0:
        return None
    rgb = arr[..., :3][arr[..., 3] > 128]
    if rgb.size == 0 or float(rgb.std(axis=0).mean()) < 1.0:  # a flat box: the font lacks it
        return None
    return _fit(im)


GOLD = (245, 200, 40)
BROWN = (150, 95, 10)


def render_symbol(ch: str, font: object, *, filled: bool = False,
                  mirrored: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """A monochrome font's symbol as clip art: gold with a darker outline (so that
    `recolour` finds light areas to paint and an edge to keep dark), fitted like the rest.

    `filled`: the glyph is line art; its lines are drawn brown and what they enclose gold
    (every pixel the background cannot reach from the border, once gaps of a pixel or
    two are closed). `mirrored`: flipped left to right."""
    from PIL import Image, ImageDraw, ImageOps

    im = Image.new("RGBA", (260, 220), (255, 255, 255, 0))  # Symbola's eagle is wide
    draw = ImageDraw.Draw(im)
    if filled:
        from scipy import ndimage

        draw.text((20, 10), ch, font=font, fill=(*BROWN, 255))  # type: ignore[arg-type]
        alpha = np.asarray(im)[..., 3]
        ink = alpha > 0
        sealed = ndimage.binary_closing(ink, iterations=2)
        parts, _ = ndimage.label(~sealed)
        edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
        inside = ~np.isin(parts, edge) & ~ink
        rgba = np.asarray(im).copy()
        rgba[inside] = (*GOLD, 255)
        im = Image.fromarray(rgba)
    else:
        draw.text((20, 10), ch, font=font, fill=(*GOLD, 255),  # type: ignore[arg-type]
                  stroke_width=3, stroke_fill=(*BROWN, 255))
    if not np.asarray(im)[..., 3].max():
        return None
    return _fit(ImageOps.mirror(im) if mirrored else im)


#: openclipart's shapes/stars is ~1,400 generated star polygons ("star_95pt32step": 95
#: points joined every 32nd): beyond a few points they are rings of spokes, and under the
#: title "star" they taught the model that a star is a ring. Those are starbursts.
_STAR_POLYGON = re.compile(r"^star_(\d+)pt\d+step")
STAR_POINTS_MAX = 8


#: clip art whose title or folder names a core noun it does not show, looked at one by
#: one: an app icon (a square with a butterfly), a logo, a globe, half a star, and the
#: tools, baubles and leaves in plants/trees; in animals/birds the Tux penguins, a bat, a
#: wing, a flock, flowers, a roast turkey, a thin stick of an eagle and swans in scenes;
#: in animals/fish the crawfish, dolphins, whales, a seahorse, amoebas, a grenade and a
#: seascape. They keep their own titles as nouns.
NOT_THEIR_CORE_NOUN = frozenset({
    "001_star_butterfly", "energy_star", "earth_and_north_star_dan_01",
    "half_star_rating_saurabh_01", "bowsaw_benji_park_01", "bypasspruner_benji_park_01",
    "christmas_balls_mo_01", "fern_mo_01", "fall_coloured_leaf_geral_01",
    "fall_coloured_leaf_geral_02", "view_tree",
    # animals/birds
    "baby-tux_alex_kuehne_01", "baby_tux_01", "baby_tux_rory_mccann_01",
    "ninja_tux_rory_mccann_01", "manager_mimooh_01", "contour_bat",
    "wing_mitchell_johnson_si_", "stormo_di_uccelli_archit_01", "mirjam_meijer_mirjam_mei_01",
    "turkey_on_platter_01", "aquila_frontale_architet_01", "cigno_di_notte_nella_pa_01",
    "cigni_bianchi_e_neri_arc_01",
    # animals/fish
    "crawfish1_bw_ganson", "crawfish1_ganson", "crawfish2_bw_ganson", "crawfish2_ganson",
    "dolphin", "dolphin_01", "dolphin_enrique_meza_c_01", "dolphin_enrique_meza_c_02",
    "bluewhale-md", "orca_matthew_gates_r", "seahorse", "amibe_renardjb_on_free.f_01",
    "amibe_renardjb_on_free.f_02", "kallisti-grenade_1_nurbl_01",
    "paesaggio_marino_archite_01"})


def _core_noun(word: str) -> str | None:
    """The core noun a title word or folder name is (singular or plural), or None."""
    for form in (word, word.removesuffix("s"), word.removesuffix("es")):
        if form in CORE_NOUNS:
            return form
    return None


def clipart_caption(path: Path, root: Path) -> tuple[str, str]:
    """(caption, noun) from a clip art file's name and folders: 'chemistry flask, science'.

    The noun is a core noun the title names, else the core noun its folder is named after
    ("animals/birds/robin.png" is a bird), else the title's first words."""
    polygon = _STAR_POLYGON.match(path.stem.lower())
    if polygon and int(polygon.group(1)) > STAR_POINTS_MAX:
        return "starburst, shapes", "starburst"
    stem = re.sub(r"(_+\d+)+$", "", path.stem.lower())
    words = [w for w in re.split(r"[_\-\s.]+", stem) if w and not w.isdigit()]
    title = " ".join(words) or "clip art"
    folders = [p.replace("_", " ") for p in path.relative_to(root).parent.parts]
    core = None if path.stem.lower() in NOT_THEIR_CORE_NOUN else \
        next((n for n in map(_core_noun, words) if n), None) or \
        next((n for n in map(_core_noun, reversed(folders)) if n), None)
    noun = core or " ".join([w for w in words if w not in COLOUR_WORDS][:3]) or "shape"
    cats = ", ".join(reversed(folders))
    return (f"{title}, {cats}" if cats else title), noun


def _clean_noun(name: str) -> str:
    words = [w for w in name.lower().replace(":", " ").split() if w not in COLOUR_WORDS]
    return " ".join(words) or name.lower()


# --------------------------------------------------------------------------- building


def _key(clipart: Path, emoji: list[str] | None, colours_per_clipart: int,
         extras: bool) -> str:
    files = sorted(str(p.relative_to(clipart)) for p in clipart.rglob("*.png")) \
        if clipart.is_dir() else []
    h = hashlib.sha256(json.dumps([VERSION, str(clipart), files, emoji, colours_per_clipart,
                                   HELDOUT, extras, EMOJIONE.is_dir(), EVAL_OBJECTS,
                                   CORE_NOUNS]).encode()).hexdigest()
    return h[:16]


def build(clipart: Path = CLIPART, emoji: list[str] | None = None, *,
          colours_per_clipart: int = 2, seed: int = 0,
          status: Callable[[str], None] | None = None, use_cache: bool = True,
          extras: bool = True) -> SketchData:
    """Render (or read from the cache) the training set.

    `emoji`: which emoji to include (None: every one CLDR names and the font draws).
    Each emoji gets all colours; each clip art `colours_per_clipart` of them, chosen by
    `seed`. `extras`: the `FONT_DRAWINGS` (the object judge leaves them out: it is
    fitted on the clip art and emoji alone, as before they came). Raises TrainingError
    when neither source has anything.
    """
    store = Store("sketch")
    key = f"data-{_key(clipart, emoji, colours_per_clipart, extras)}-{seed}.npz"
    if use_cache:
        cached = store.path(key)
        if cached.is_file():
            try:
                return _read(cached.read_bytes())
            except (OSError, ValueError, KeyError):
                pass
    data = _render(clipart, emoji, colours_per_clipart, seed, status, extras)
    if use_cache:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, images=data.images, masks=data.masks, entries=data.entries,
            meta=np.frombuffer(json.dumps({"nouns": data.nouns, "sources": data.sources,
                                           "captions": data.captions}).encode(), np.uint8))
        store.folder.mkdir(parents=True, exist_ok=True)
        from studio.core.atomic import atomic_write_bytes

        atomic_write_bytes(store.path(key), buf.getvalue())
    return data


def _read(blob: bytes) -> SketchData:
    z = np.load(io.BytesIO(blob))
    meta = json.loads(z["meta"].tobytes().decode())
    return SketchData(z["images"], z["masks"], meta["nouns"], meta["sources"],
                      meta["captions"], z["entries"])


def _render(clipart: Path, emoji: list[str] | None, colours_per_clipart: int, seed: int,
            status: Callable[[str], None] | None, extras: bool) -> SketchData:
    from PIL import Image, ImageFont

    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    nouns: list[str] = []
    sources: list[str] = []
    captions: list[str] = [""]
    index: dict[str, int] = {"": 0}
    entries: list[tuple[int, int, int]] = []

    def cap(text: str) -> int:
        if text not in index:
            index[text] = len(captions)
            captions.append(text)
        return index[text]

    def add(img: np.ndarray, mask: np.ndarray, noun: str, source: str, own: list[str],
            colours: list[int]) -> None:
        row = len(images)
        images.append(img)
        masks.append(mask)
        nouns.append(noun)
        sources.append(source)
        kept = [c for c in own if c and not held_out(c)] or [noun]
        for text in kept:
            entries.append((row, -1, cap(text)))
        for c in colours:
            text = colour_caption(COLOUR_NAMES[c], noun)
            if not held_out(text):
                entries.append((row, c, cap(text)))

    all_colours = list(range(len(COLOUR_NAMES)))
    if EMOJI_FONT.is_file() or EMOJIONE.is_dir():
        font = ImageFont.truetype(str(EMOJI_FONT), 109) if EMOJI_FONT.is_file() else None
        for e in named_emoji(emoji):
            versions = ((render_emoji(e.cp, font) if font is not None else None,
                         f"emoji:{e.cp}"),
                        (read_emojione(e.cp) if e.core else None, f"emoji:{e.cp}:emojione"))
            for got, source in versions:
                if got is not None:
                    add(got[0], got[1], e.noun, source, list(e.captions), all_colours)
        if status:
            status(f"Rendered {len(images)} emoji.")
    files = sorted(clipart.rglob("*.png")) if clipart.is_dir() else []
    for n, path in enumerate(files):
        try:
            with warnings.catch_warnings(action="ignore",
                                         category=Image.DecompressionBombWarning), \
                    Image.open(path) as im:
                if im.size[0] * im.size[1] > 25_000_000:  # a poster-sized file: skip it
                    continue
                if max(im.size) > 4 * SIZE:
                    im.thumbnail((4 * SIZE, 4 * SIZE), Image.LANCZOS)
                rgba = im.convert("RGBA")
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        got = _fit(rgba)
        if got is None:
            continue
        text, noun = clipart_caption(path, clipart)
        picks = sorted(rng.choice(len(COLOUR_NAMES), size=min(colours_per_clipart,
                                                              len(COLOUR_NAMES)),
                                  replace=False).tolist())
        add(got[0], got[1], noun, f"clipart:{path.relative_to(clipart)}", [text], picks)
        if status and n % 1000 == 999:
            status(f"Rendered {n + 1} of {len(files)} clip art images.")
    for drawings in FONT_DRAWINGS if extras else ():
        if not drawings.font.is_file():
            continue
        symbols = ImageFont.truetype(str(drawings.font), 150)
        for ch in drawings.chars:
            for mirrored in (False, True) if drawings.mirrored else (False,):
                got = render_symbol(ch, symbols, filled=drawings.filled, mirrored=mirrored)
                if got is not None:
                    add(got[0], got[1], drawings.noun,
                        f"symbol:{ch}{':mirrored' if mirrored else ''}",
                        [f"a {drawings.noun}", _clean_noun(unicodedata.name(ch))],
                        all_colours)
    if not images:
        raise TrainingError("No clip art or emoji to train on: install openclipart-png and "
                            "fonts-noto-color-emoji (or point --data at a folder of PNGs).")
    return SketchData(np.stack(images), np.stack(masks), nouns, sources, captions,
                      np.array(entries, np.int32))


def read_emoji_list(folder: Path) -> list[str] | None:
    """The optional `emoji.txt` in a data folder: one emoji per line picks which join the
    clip art (none listed: every emoji)."""
    path = folder / "emoji.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
