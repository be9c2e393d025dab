"""The GAN recipe and the image-folder reader the image recipes share: the data check only
reads and says what it found (sizes, duplicates, captions in any encoding, modes converted,
files skipped and why); a tiny DCGAN trained on coloured shapes samples colours close to
the data's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.core.errors import RequestError
from studio.core.training import TrainingError, config_for
from studio.engines.training import data as data_mod
from studio.engines.training.data import (
    assign_buckets,
    bucket_for,
    buckets,
    decode_text,
    load_rgb,
    load_square,
    scan_images,
    split,
)
from studio.engines.training.gan import GanRecipe, generator_widths
from studio.engines.training.trainer import Trainer
from tests.training_toys import BACKGROUND, mean_colour, shapes, snapshot


def mixed_folder(root: Path) -> Path:
    """Every case a data check must handle, in one folder."""
    folder = shapes(root / "mixed", n=4)
    Image.new("RGBA", (32, 32), (255, 0, 0, 128)).save(folder / "alpha.png")
    Image.new("L", (40, 32), 90).save(folder / "grey.png")
    Image.new("CMYK", (32, 48), (0, 255, 255, 0)).save(folder / "print.jpg")
    Image.new("RGB", (4, 4), (1, 2, 3)).save(folder / "tiny.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "shape_00 copy.png").write_bytes((folder / "shape_00.png").read_bytes())
    (folder / "shape_01.txt").write_text("a red circle, café", encoding="cp1252")
    (folder / "shape_02.txt").write_text("a red circle on blue", encoding="utf-16")
    (folder / "shape_03.txt").write_bytes("ümlaut circle".encode("utf-8-sig"))
    (folder / "notes.md").write_text("not an image")
    return folder


def test_data_check_reports_everything_and_changes_nothing(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path)
    before = snapshot(folder)
    images, report = scan_images(folder, min_side=8)
    assert snapshot(folder) == before
    assert report.found == 10  # images of the suffixes read, the duplicate included
    assert report.usable == 7  # 4 shapes + RGBA + grey + CMYK
    assert report.duplicates == 1
    assert len(images) == 7
    skipped = dict(report.skipped)
    assert "too small (4×4" in skipped["tiny.png"]
    assert skipped["broken.png"].startswith("not a readable image")
    lines = "\n".join(report.lines())
    assert "1 RGBA image converted to RGB." in lines
    assert "1 greyscale image converted to RGB." in lines
    assert "1 CMYK image converted to RGB." in lines
    assert "1 caption read as cp1252 (not UTF-8)." in lines
    assert "1 caption read as utf-16 (not UTF-8)." in lines
    assert "4 captions from file names" in lines
    assert report.sizes == "32×32 to 32×48"
    captions = {i.path.name: (i.caption, i.caption_source) for i in images.items}
    assert captions["shape_01.png"] == ("a red circle, café", "sidecar")
    assert captions["shape_02.png"] == ("a red circle on blue", "sidecar")
    assert captions["shape_03.png"] == ("ümlaut circle", "sidecar")
    assert captions["grey.png"] == ("grey", "name")


def test_empty_missing_and_unreadable_folders_say_one_sentence(tmp_path: Path,
                                                               monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    recipe = GanRecipe(config_for("gan", data=str(empty), name="x", resolution=16))
    with pytest.raises(TrainingError, match=r"^No images found in .*empty\.$"):
        recipe.check_data()
    with pytest.raises(TrainingError, match="does not exist"):
        scan_images(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(TrainingError, match="is a file, not a folder"):
        scan_images(tmp_path / "file.png")

    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data_mod.os, "scandir", denied)
    with pytest.raises(TrainingError, match=r"cannot be read \(Permission denied\)\.$"):
        scan_images(empty)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads a folder whatever its mode")
def test_a_folder_without_read_permission(tmp_path: Path) -> None:
    locked = shapes(tmp_path / "locked", n=2)
    locked.chmod(0)
    try:
        with pytest.raises(TrainingError, match="cannot be read"):
            scan_images(locked)
    finally:
        locked.chmod(0o755)


def test_nothing_usable_names_the_first_reason(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"junk")
    (folder / "b.jpg").write_bytes(b"junk")
    recipe = GanRecipe(config_for("gan", data=str(folder), name="x", resolution=16))
    with pytest.raises(TrainingError, match=r"None of the 2 images .* can be used \(a\.png: "
                                            r"not a readable .*; 1 more skipped\)\.$"):
        recipe.check_data()


def test_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("CMYK", (8, 8), (0, 0, 0, 255)).save(tmp_path / "black.jpg")
    Image.new("L", (8, 8), 200).save(tmp_path / "grey.png")
    assert load_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)  # on white
    assert max(load_rgb(tmp_path / "black.jpg").getpixel((0, 0))) < 40
    assert load_rgb(tmp_path / "grey.png").getpixel((0, 0)) == (200, 200, 200)
    square = load_square(tmp_path / "grey.png", 16)
    assert square.shape == (16, 16, 3) and square.dtype == np.uint8


def test_caption_encodings() -> None:
    assert decode_text("naïve".encode()) == ("naïve", "utf-8")
    assert decode_text("naïve".encode("utf-8-sig")) == ("naïve", "utf-8-sig")
    assert decode_text("naïve".encode("utf-16")) == ("naïve", "utf-16")
    assert decode_text("naïve".encode("cp1252")) == ("naïve", "cp1252")
    assert decode_text(b"\x81\x8d") == ("\x81\x8d", "latin-1")  # bytes cp1252 lacks


def test_aspect_ratio_buckets() -> None:
    options = buckets(512)
    assert (512, 512) in options
    assert all(w * h <= 512 * 512 and 0.5 <= w / h <= 2 for w, h in options)
    assert all(w % 64 == 0 and h % 64 == 0 for w, h in options)
    portrait = bucket_for(600, 1000, options)
    assert portrait[0] < portrait[1]
    assert bucket_for(1000, 1000, options) == (512, 512)
    from studio.engines.training.data import ImageItem

    items = [ImageItem(Path(f"{i}.png"), w, h, "RGB", "", "name", str(i))
             for i, (w, h) in enumerate([(100, 100), (200, 100), (100, 210), (90, 90)])]
    groups = assign_buckets(items, 256)
    assert sorted(i for g in groups.values() for i in g) == [0, 1, 2, 3]
    assert groups[(256, 256)] == [0, 3]


def test_split_is_seeded_and_keeps_a_training_item() -> None:
    assert split(10, 0.2, 0) == split(10, 0.2, 0)
    train, val = split(10, 0.2, 0)
    assert len(val) == 2 and sorted(train + val) == list(range(10))
    assert split(1, 0.5, 0) == ([0], [])
    assert split(2, 0.01, 0)[1] != []  # a split asked for holds at least one item
    assert split(5, 0.0, 0) == ([0, 1, 2, 3, 4], [])


def test_sides_and_widths() -> None:
    assert generator_widths(64, 64) == (512, 256, 128, 64)  # the built-in faces' shape
    assert generator_widths(16, 32) == (64, 32)
    recipe = GanRecipe(config_for("gan", data=".", name="x", resolution=100))
    with pytest.raises(RequestError, match="A GAN trains at 16, 32, 64 or 128 px, not 100"):
        recipe.check_data()


def test_a_tiny_gan_learns_the_colours_of_its_data(tmp_path: Path) -> None:
    data = shapes(tmp_path / "data", n=16)
    before_data = snapshot(data)
    config = config_for("gan", data=str(data), name="colours", steps=60, resolution=16,
                        batch=8, lr=2e-3, save_every=30, sample_every=30, eval_every=10,
                        val_split=0.25)
    trainer = Trainer(config, device="cpu", threads=1)
    untrained = GanRecipe(config, "cpu")
    untrained.setup()
    start = np.stack([s.data for s in untrained.samples()]).reshape(-1, 3).mean(0)
    model = trainer.run()
    target = mean_colour(data)
    assert trainer.recipe is not None
    after = np.stack([s.data for s in trainer.recipe.samples()]).reshape(-1, 3).mean(0)
    assert np.linalg.norm(after - target) < 0.6 * np.linalg.norm(start - target)
    # the background (blue) dominates the data, and now the samples
    assert after[2] > after[0] and after[2] > after[1]
    assert tuple(BACKGROUND) != tuple(start.round())
    assert snapshot(data) == before_data  # training read the folder, never wrote it
    config_json = json.loads((model / "config.json").read_text())
    assert config_json["model_type"] == "studio-gan"
    assert config_json["resolution"] == 16 and config_json["widths"] == [64, 32]
    from safetensors.torch import load_file

    weights = load_file(model / "model.safetensors")
    state = trainer.recipe.g.state_dict()
    assert set(weights) == set(state)
    assert all(torch.equal(weights[k], state[k].cpu()) for k in state)
