"""The Gallery over a real history index: thumbnails, search, filters, details, actions."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from studio.core.outputs import save_result
from studio.core.requests import ImageRequest, MusicRequest, TextRequest
from studio.core.results import Result
from studio.ui.gallery import GalleryModel
from tests.ui import make_ctx, shown_window


@pytest.fixture
def window(qtbot, tmp_path):
    # Del, Ctrl+C and Ctrl+Z need the active window
    with shown_window(qtbot, make_ctx(tmp_path), tab="gallery", active=True) as w:
        yield w


def add_outputs(ctx) -> dict[str, Path]:
    """One picture (saved by the real PNG writer), one text and one music file, indexed."""
    out = ctx.settings.output_path
    image_req = ImageRequest(model="builtin:faces", prompt="a smiling face", seed=31,
                             width=64, height=64, steps=1)
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, :, 0] = np.arange(64, dtype=np.uint8)[None, :] * 4
    image_result = Result(image_req, "image", images=[pixels], info={"seeds": [31]})
    (image,) = save_result(image_result, out)
    ctx.history.add_output(image, image_result)

    text_req = TextRequest(model="builtin:smollm2", prompt="a poem about rain", seed=32)
    text = out / "poem.md"
    text.write_text("# Rain\n\nSoft rain on the roof, all night long.\n", encoding="utf-8")
    ctx.history.add_output(text, Result(text_req, "text", text="Soft rain on the roof"))

    music_req = MusicRequest(model="builtin:composer", prompt="calm piano", seed=33,
                             duration=0.5)
    music = out / "piano.wav"
    with wave.open(str(music), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.zeros(4000, np.int16).tobytes())
    audio = np.zeros((1, 4000), np.float32)
    ctx.history.add_output(music, Result(music_req, "music", audio=audio, sample_rate=8000))
    return {"image": image, "text": text, "music": music}


def refresh(gallery, qtbot) -> int:
    with qtbot.waitSignal(gallery.refreshed, timeout=10000) as sig:
        gallery.refresh()
    return sig.args[0]


def click_row(gallery, qtbot, row: int) -> None:
    rect = gallery.grid.visualRect(gallery.model.index(row))
    qtbot.mouseClick(gallery.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def row_of(gallery, path: Path) -> int:
    return next(r for r, it in enumerate(gallery.items()) if Path(it.path) == path)


def test_gallery_lists_every_kind_with_thumbnails(window, qtbot):
    gallery = window.gallery
    assert refresh(gallery, qtbot) == 0
    assert gallery.empty_label.isVisible()
    files = add_outputs(window.ctx)
    assert refresh(gallery, qtbot) == 3
    assert not gallery.empty_label.isVisible()
    assert gallery.count_label.text() == "3 items"
    # thumbnails are decoded on the pool and land in the cache
    for r in range(3):
        gallery.model.data(gallery.model.index(r), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not gallery.model.thumbs.is_loading(), timeout=10000)
    for kind, path in files.items():
        icon = gallery.model.data(gallery.model.index(row_of(gallery, path)),
                                  Qt.ItemDataRole.DecorationRole)
        assert not icon.isNull(), kind
    # the picture's thumbnail is the picture itself (red ramp), not a drawn tile
    icon = gallery.model.thumbs.get(str(files["image"]))
    img = icon.pixmap(64, 64).toImage()
    assert img.pixelColor(img.width() - 2, img.height() // 2).red() > 200


def test_search_and_modality_filter(window, qtbot):
    gallery = window.gallery
    add_outputs(window.ctx)
    assert refresh(gallery, qtbot) == 3
    qtbot.keyClicks(gallery.search, "rain")  # debounced: one query after typing stops
    qtbot.waitUntil(lambda: gallery.item_count() == 1, timeout=10000)
    assert gallery.items()[0].modality == "text"
    gallery.search.clear()
    qtbot.waitUntil(lambda: gallery.item_count() == 3, timeout=5000)
    gallery.modality.setCurrentIndex(gallery.modality.findData("music"))
    qtbot.waitUntil(lambda: gallery.item_count() == 1, timeout=10000)
    assert gallery.items()[0].modality == "music"
    qtbot.keyClicks(gallery.search, "nothing like this")
    qtbot.waitUntil(lambda: gallery.item_count() == 0, timeout=10000)
    assert gallery.empty_label.text() == "No outputs match."


def test_details_and_use_these_settings_fill_the_art_panel(window, qtbot):
    gallery, art = window.gallery, window.art
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["image"]))
    details = gallery.details
    assert details.prompt.text() == "a smiling face"
    assert details.fields["Seed"].text() == "31"
    assert details.fields["Size"].text() == "64 × 64"
    assert details.fields["Model"].text() == "Faces (built-in GAN, 64²)"  # the catalog's name
    assert details.fields["Model"].toolTip() == "builtin:faces"
    assert details.fields["File"].text() == files["image"].name
    qtbot.waitUntil(details.view.has_image, timeout=5000)
    assert not details.play_button.isVisible()
    qtbot.mouseClick(details.use_button, Qt.MouseButton.LeftButton)
    assert window.current_tab() == "art"
    assert art.prompt.toPlainText() == "a smiling face"
    assert art.seed.value() == 31
    assert art.model.current_model() == "builtin:faces"
    assert (art.width_box.value(), art.height_box.value()) == (64, 64)


def test_music_item_offers_play_and_text_item_shows_a_snippet(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["music"]))
    details = gallery.details
    assert details.play_button.isVisible()
    assert details.fields["Size"].text() == "0.5 s"
    with qtbot.waitSignal(gallery.play_requested, timeout=2000) as sig:
        qtbot.mouseClick(details.play_button, Qt.MouseButton.LeftButton)
    assert Path(sig.args[0]) == files["music"]
    assert window.current_tab() == "music"  # the main window hands it to the Music panel
    window.show_tab("gallery")
    click_row(gallery, qtbot, row_of(gallery, files["text"]))
    assert not details.play_button.isVisible()
    assert details.prompt.text() == "a poem about rain"
    assert details.view.has_image()  # the text snippet tile


def test_missing_file_shows_a_placeholder_not_a_crash(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    files["image"].unlink()
    refresh(gallery, qtbot)
    row = row_of(gallery, files["image"])
    gallery.model.data(gallery.model.index(row), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not gallery.model.thumbs.is_loading(), timeout=5000)
    click_row(gallery, qtbot, row)
    details = gallery.details
    assert "(file missing)" in details.fields["File"].text()
    assert details.message.text() == "This file is missing: it was moved or deleted."
    assert not details.open_button.isEnabled()
    assert details.use_button.isEnabled()  # the recipe is in the index, still usable


def test_rating_is_saved_in_the_history(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["image"]))
    stars = gallery.details.rating
    qtbot.mouseClick(stars, Qt.MouseButton.LeftButton, pos=QPoint(22 * 3 + 11, 12))
    assert stars.rating() == 4
    item = gallery.selected_item()
    assert window.ctx.history.get(item.id).rating == 4
    # clicking the same star again clears it
    qtbot.mouseClick(stars, Qt.MouseButton.LeftButton, pos=QPoint(22 * 3 + 11, 12))
    assert window.ctx.history.get(item.id).rating == 0


def test_model_roles_expose_item_and_path(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    index = gallery.model.index(row_of(gallery, files["text"]))
    assert Path(gallery.model.data(index, GalleryModel.PathRole)) == files["text"]
    assert gallery.model.data(index, GalleryModel.ItemRole).prompt == "a poem about rain"
    assert gallery.model.data(index, Qt.ItemDataRole.DisplayRole) == "a poem about rain"


def test_new_outputs_arrive_on_top_and_keep_the_selection(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["music"]))
    chosen = gallery.selected_item()
    req = ImageRequest(model="builtin:eyes", prompt="green eyes", seed=40, width=64, height=64)
    result = Result(req, "image", images=[np.zeros((64, 64, 3), np.uint8)], info={"seeds": [40]})
    (newest,) = save_result(result, window.ctx.settings.output_path)
    window.ctx.history.add_output(newest, result)
    inserted = []
    gallery.model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    assert refresh(gallery, qtbot) == 4
    assert inserted == [(0, 0)]  # an insert on top, not a reset
    assert Path(gallery.items()[0].path) == newest
    assert gallery.selected_item().path == chosen.path
    assert gallery.grid.currentIndex().row() == row_of(gallery, files["music"])


def add_pictures(ctx, sizes: list[tuple[int, int]]) -> list[Path]:
    """Flat red pictures of the given (width, height), saved and indexed like real outputs."""
    paths = []
    for i, (w, h) in enumerate(sizes):
        req = ImageRequest(model="builtin:faces", prompt=f"picture {w}x{h}", seed=50 + i,
                           width=max(64, w), height=max(64, h), steps=1)
        pixels = np.zeros((h, w, 3), np.uint8)
        pixels[..., 0] = 255
        result = Result(req, "image", images=[pixels], info={"seeds": [50 + i]})
        (path,) = save_result(result, ctx.settings.output_path)
        ctx.history.add_output(path, result)
        paths.append(path)
    return paths


def opaque_box(image) -> tuple[int, int]:
    """Width and height of the non-transparent part of a thumbnail."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = image.constBits()
    alpha = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    alpha = alpha[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., 3]
    rows, cols = np.nonzero(alpha > 0)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_thumbnails_keep_their_aspect_and_every_caption_shows(window, qtbot):
    from studio.ui.gallery import THUMB

    gallery = window.gallery
    sizes = [(512, 256), (128, 512), (64, 64)]  # the 64 px one is newest: the grid's first
    paths = add_pictures(window.ctx, sizes)
    assert refresh(gallery, qtbot) == 3
    for r in range(3):
        gallery.model.data(gallery.model.index(r), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not gallery.model.thumbs.is_loading(), timeout=10000)
    rects = []
    for (w, h), path in zip(sizes, paths, strict=True):
        index = gallery.model.index(row_of(gallery, path))
        icon = gallery.model.data(index, Qt.ItemDataRole.DecorationRole)
        # every tile is one size, so the grid lays out the same for all
        assert icon.actualSize(gallery.grid.iconSize()) == gallery.grid.iconSize()
        bw, bh = opaque_box(icon.pixmap(THUMB, THUMB).toImage())
        assert max(bw, bh) >= THUMB - 2  # fills the tile along its long side
        assert abs(bw / bh - w / h) < 0.05, (w, h, bw, bh)  # not stretched
        rects.append(gallery.grid.visualRect(index))
        assert gallery.model.data(index, Qt.ItemDataRole.DisplayRole) == f"picture {w}x{h}"
    line = gallery.grid.fontMetrics().height()
    for rect in rects:
        assert rect.height() >= THUMB + line  # room for the caption under every tile
    # the caption is painted: the strip under the icon holds text pixels in every tile
    shot = gallery.grid.viewport().grab().toImage()
    for rect in rects:
        strip = [shot.pixelColor(x, y).lightness()
                 for y in range(rect.top() + THUMB + 2, min(rect.bottom(), shot.height() - 1))
                 for x in range(rect.left() + 4, rect.right() - 4)]
        assert strip and max(strip) - min(strip) > 60  # light text on the dark tile


# ---------------------------------------------------------------- filters


def test_filter_by_rating_with_the_keyboard(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    history = window.ctx.history
    history.set_rating(history.find_path(files["image"]).id, 5)
    history.set_rating(history.find_path(files["music"]).id, 3)
    assert refresh(gallery, qtbot) == 3
    combo = gallery.rating_filter
    combo.setFocus()
    for _ in range(3):  # Any → 1+ → 2+ → 3+
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == "★ 3+"
    qtbot.waitUntil(lambda: gallery.item_count() == 2, timeout=10000)
    assert {Path(i.path) for i in gallery.items()} == {files["image"], files["music"]}
    qtbot.keyClick(combo, Qt.Key.Key_End)  # five stars only
    qtbot.waitUntil(lambda: gallery.item_count() == 1, timeout=10000)
    assert Path(gallery.items()[0].path) == files["image"]
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: gallery.item_count() == 3, timeout=10000)


def test_filter_by_model_lists_the_models_used(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    assert refresh(gallery, qtbot) == 3
    combo = gallery.model_filter
    models = [combo.itemData(i) for i in range(combo.count())]
    assert models[0] is None and set(models[1:]) == {"builtin:faces", "builtin:smollm2",
                                                     "builtin:composer"}
    assert combo.itemText(combo.findData("builtin:faces")) == "Faces (built-in GAN, 64²)"
    combo.setFocus()
    while combo.currentData() != "builtin:composer":
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: gallery.item_count() == 1, timeout=10000)
    assert Path(gallery.items()[0].path) == files["music"]
    # a new output with another model keeps the choice and adds the model
    add_pictures(window.ctx, [(64, 64)])
    assert refresh(gallery, qtbot) == 1
    assert combo.currentData() == "builtin:composer"


def test_filter_by_kind_and_by_date(window, qtbot, tmp_path):
    import os
    import time

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    gallery = window.gallery
    add_outputs(window.ctx)
    old = tmp_path / "old-a1111.png"
    info = PngInfo()
    info.add_text("parameters", "an old fox\nSteps: 10, Sampler: Euler a, CFG scale: 7, "
                                "Seed: 9, Size: 64x64, Model: m")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(old, pnginfo=info)
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    window.ctx.history.import_file(old)  # indexed with the file's date
    assert refresh(gallery, qtbot) == 4
    assert Path(gallery.items()[-1].path) == old  # newest first
    date = gallery.date_filter
    date.setFocus()
    qtbot.keyClick(date, Qt.Key.Key_Down)
    assert date.currentText() == "Today"
    qtbot.waitUntil(lambda: gallery.item_count() == 3, timeout=10000)
    assert old not in {Path(i.path) for i in gallery.items()}
    while date.currentText() != "Past year":
        qtbot.keyClick(date, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: gallery.item_count() == 4, timeout=10000)
    # kind and date together
    kind = gallery.modality
    kind.setCurrentIndex(kind.findData("image"))
    qtbot.waitUntil(lambda: gallery.item_count() == 2, timeout=10000)
    date.setCurrentIndex(date.findText("Past 30 days"))
    qtbot.waitUntil(lambda: gallery.item_count() == 1, timeout=10000)
    assert gallery.items()[0].modality == "image" and Path(gallery.items()[0].path) != old
    kind.setCurrentIndex(kind.findData("explore"))
    qtbot.waitUntil(lambda: gallery.item_count() == 0, timeout=10000)
    assert gallery.empty_label.text() == "No outputs match."


# ---------------------------------------------------------------- details, clipboard


def test_details_show_every_recipe_field_and_the_infotext(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    with qtbot.waitSignal(gallery.infotext_loaded, timeout=10000) as sig:
        click_row(gallery, qtbot, row_of(gallery, files["image"]))
    details = gallery.details
    params = details.parameters.toPlainText().splitlines()
    stored = gallery.selected_item().request
    assert len(params) == len([k for k in stored if k != "notes"])  # every field
    assert "Prompt: a smiling face" in params and "Seed: 31" in params
    assert "Model: builtin:faces" in params and "Steps: 1" in params
    assert "Width: 64" in params and "Height: 64" in params
    assert details.fields["Kind"].text() == "Picture"
    text = sig.args[0]
    assert text.startswith("a smiling face\n") and "Seed: 31" in text
    assert details.infotext.toPlainText() == text and details.infotext.isVisible()
    # music has its fields and no infotext
    click_row(gallery, qtbot, row_of(gallery, files["music"]))
    assert "Duration: 0.5" in details.parameters.toPlainText().splitlines()
    assert not details.infotext.isVisible()
    assert not details.copy_image_button.isEnabled()


def test_ctrl_c_puts_the_picture_on_the_clipboard_and_copy_recipe_the_text(window, qtbot):
    from PySide6.QtWidgets import QApplication

    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    clipboard = QApplication.clipboard()
    clipboard.setText("something else")
    with qtbot.waitSignal(gallery.infotext_loaded, timeout=10000) as info:
        click_row(gallery, qtbot, row_of(gallery, files["image"]))
    gallery.grid.setFocus()
    with qtbot.waitSignal(gallery.copied, timeout=10000) as sig:
        qtbot.keyClick(gallery.grid, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert sig.args[0] == "image"
    image = clipboard.image()
    assert (image.width(), image.height()) == (64, 64)
    assert image.pixelColor(60, 10).red() > 200 and image.pixelColor(1, 10).red() < 20
    with qtbot.waitSignal(gallery.copied, timeout=5000) as sig:
        qtbot.mouseClick(gallery.details.copy_recipe_button, Qt.MouseButton.LeftButton)
    assert sig.args[0] == "recipe"
    assert clipboard.text() == info.args[0]
    # a text output copies its recipe as JSON
    click_row(gallery, qtbot, row_of(gallery, files["text"]))
    gallery.grid.setFocus()
    with qtbot.waitSignal(gallery.copied, timeout=5000) as sig:
        qtbot.keyClick(gallery.grid, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert sig.args[0] == "recipe"
    import json

    assert json.loads(clipboard.text())["prompt"] == "a poem about rain"


# ---------------------------------------------------------------- trash


def test_delete_moves_to_the_trash_and_undo_puts_it_back(window, qtbot):
    gallery = window.gallery
    ctx = window.ctx
    files = add_outputs(ctx)
    image = files["image"]
    before = ctx.history.find_path(image)
    ctx.history.set_rating(before.id, 2)
    before = ctx.history.find_path(image)
    content = image.read_bytes()
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, image))
    gallery.grid.setFocus()
    with qtbot.waitSignal(gallery.refreshed, timeout=10000) as sig:
        qtbot.keyClick(gallery.grid, Qt.Key.Key_Delete)
    assert sig.args[0] == 2
    assert not image.exists()
    trashed = list((ctx.settings.output_path / ".trash").rglob(image.name))
    assert len(trashed) == 1 and trashed[0].read_bytes() == content
    assert image not in {Path(i.path) for i in gallery.items()}
    assert ctx.history.find_path(image) is None
    notice = gallery.notice
    assert notice.isVisible() and notice.text() == f"Moved {image.name} to the trash folder."
    assert gallery.selected_item() is not None  # the neighbour is selected
    with qtbot.waitSignal(gallery.refreshed, timeout=10000) as sig:
        qtbot.mouseClick(notice.action_button, Qt.MouseButton.LeftButton)
    assert sig.args[0] == 3
    assert image.read_bytes() == content
    assert not trashed[0].exists()
    assert ctx.history.find_path(image) == before  # same id, rating and date
    assert Path(gallery.selected_item().path) == image  # selected again
    assert notice.text() == f"Put {image.name} back."


def test_ctrl_z_undoes_deletes_one_by_one(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    for key in ("text", "music"):
        click_row(gallery, qtbot, row_of(gallery, files[key]))
        with qtbot.waitSignal(gallery.refreshed, timeout=10000):
            qtbot.mouseClick(gallery.details.delete_button, Qt.MouseButton.LeftButton)
    assert gallery.item_count() == 1
    assert not files["text"].exists() and not files["music"].exists()
    gallery.grid.setFocus()
    with qtbot.waitSignal(gallery.refreshed, timeout=10000):
        qtbot.keyClick(gallery.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert files["music"].exists() and not files["text"].exists()
    with qtbot.waitSignal(gallery.refreshed, timeout=10000):
        qtbot.keyClick(gallery.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert files["text"].exists() and gallery.item_count() == 3
    assert not gallery.trash.can_undo()


def test_deleting_an_entry_whose_file_is_missing_removes_it_from_the_gallery(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    files["text"].unlink()
    click_row(gallery, qtbot, row_of(gallery, files["text"]))
    with qtbot.waitSignal(gallery.refreshed, timeout=10000) as sig:
        qtbot.mouseClick(gallery.details.delete_button, Qt.MouseButton.LeftButton)
    assert sig.args[0] == 2
    assert window.ctx.history.find_path(files["text"]) is None
    with qtbot.waitSignal(gallery.refreshed, timeout=10000) as sig:
        qtbot.mouseClick(gallery.notice.action_button, Qt.MouseButton.LeftButton)
    assert sig.args[0] == 3 and window.ctx.history.find_path(files["text"]) is not None


def test_a_delete_that_fails_says_why_in_one_line(window, qtbot):
    gallery = window.gallery
    files = add_outputs(window.ctx)
    refresh(gallery, qtbot)
    click_row(gallery, qtbot, row_of(gallery, files["text"]))
    # the index forgot it and the file went away behind the Gallery's back
    window.ctx.history.remove(gallery.selected_item().id)
    files["text"].unlink()
    with qtbot.waitSignal(gallery.trash.failed, timeout=10000) as sig:
        qtbot.mouseClick(gallery.details.delete_button, Qt.MouseButton.LeftButton)
    assert "\n" not in sig.args[0] and files["text"].name in sig.args[0]
    assert gallery.notice.text() == sig.args[0]
    assert gallery.details.delete_button.isEnabled()
