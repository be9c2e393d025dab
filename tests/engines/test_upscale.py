"""Upscalers: a tiny ESRGAN built from spandrel's own architecture, saved as safetensors and
loaded through the app's loader; tiles, Lanczos, cancel, refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core import catalog, families
from studio.core.errors import Cancelled, ModelError, RequestError
from studio.core.recipes import read_recipe
from studio.core.settings import Settings
from studio.core.upscale import UpscaleRequest
from studio.engines import upscale as up
from studio.engines.base import Events, LoadSpec
from studio.engines.runner import Runner


def tiny_esrgan(path: Path, scale: int = 2) -> Path:
    """An 8-filter, one-block RRDBNet (ESRGAN's original key layout), saved as safetensors."""
    import torch
    from safetensors.torch import save_file

    up._spandrel()  # spandrel imports (with torchvision or without)
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def esrgan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "upscale"
    folder.mkdir()
    return tiny_esrgan(folder / "tiny-esrgan-x2.safetensors")


@pytest.fixture(scope="module")
def engine(esrgan: Path) -> up.UpscaleEngine:
    return up.UpscaleEngine.load(LoadSpec(str(esrgan), "cpu", "float32"), Settings(), Events())


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.random((h // 8 + 1, w // 8 + 1, 3))
    big = np.kron(smooth, np.ones((8, 8, 1)))[:h, :w]
    return (np.clip(big * 0.8 + rng.random((h, w, 3)) * 0.2, 0, 1) * 255).astype(np.uint8)


def save_png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def test_the_classifier_files_it_as_an_esrgan_upscaler_not_a_generator(esrgan):
    entry = catalog.classify(esrgan)
    assert entry is not None and entry.descriptor is families.UPSCALER_ESRGAN
    assert entry.role == "component" and not entry.usable()
    assert entry.descriptor.serves("upscale") and not entry.descriptor.serves("image")


def test_a_pth_in_an_esrgan_folder_is_a_pickled_upscaler(tmp_path):
    folder = tmp_path / "ESRGAN"
    folder.mkdir()
    (folder / "4x_thing.pth").write_bytes(b"not read by the classifier")
    entry = catalog.classify(folder / "4x_thing.pth")
    assert entry is not None and entry.descriptor is families.UPSCALER and entry.pickled
    stray = tmp_path / "stray.pth"
    stray.write_bytes(b"x")
    assert catalog.classify(stray) is None  # a .pth elsewhere is not guessed at


def test_the_app_loader_runs_it_and_the_size_is_the_scale(engine):
    image = picture(24, 32)
    out = engine.upscale(image, 2, tile=0)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert engine.scale == 2 and engine.memory_bytes() > 0
    four = engine.upscale(image, 4, tile=0)  # a ×2 network asked for ×4: resized to fit
    assert four.shape == (96, 128, 3)


def test_tiled_and_untiled_match_away_from_the_seams_and_are_close_at_them(engine):
    image = picture(40, 96, seed=1)
    whole = engine.upscale(image, 2, tile=0).astype(int)
    boxes = up.tile_boxes(40, 96, 64, 16)
    assert [b[1] for b in boxes] == [0, 32]  # two tiles side by side, sharing 32 px
    tiled = engine.upscale(image, 2, tile=64, overlap=16).astype(int)
    # source columns 0–11 lie only in the first tile, far (≥ 52 px) from its inner edge
    assert np.abs(tiled[:, :24] - whole[:, :24]).max() <= 1
    assert np.abs(tiled[:, -24:] - whole[:, -24:]).max() <= 1
    diff = np.abs(tiled - whole)
    assert diff.mean() < 1.0 and diff.max() <= 24


def test_tiles_report_progress_and_cancel_stops_between_them(engine):
    image = picture(40, 96)
    seen: list[tuple[int, int]] = []

    class StopAfterOne(Events):
        def on_progress(self, progress):
            seen.append((progress.step, progress.total))
            self.cancel_flag.set()

    calls = []
    real = engine._run

    def counting(tile):
        calls.append(tile.shape)
        return real(tile)

    engine._run = counting  # type: ignore[method-assign]
    try:
        with pytest.raises(Cancelled):
            engine.upscale(image, 2, tile=64, overlap=16, events=StopAfterOne())
    finally:
        del engine._run
    assert seen == [(1, 2)] and len(calls) == 1  # the second tile never ran


def test_lanczos_is_always_there_at_x2_and_x4(tmp_path):
    assert families.of_builtin("builtin:lanczos") is families.UPSCALER_LANCZOS
    assert any(e.id == "builtin:lanczos" for e in catalog.scan(Settings(output_dir=str(tmp_path))))
    image = picture(20, 30)
    for scale in (2, 4):
        out = up.upscale_array("lanczos", image, scale)
        assert out.shape == (20 * scale, 30 * scale, 3)
    same = up.upscale_array("builtin:lanczos", image, 2)
    expected = Image.fromarray(image).resize((60, 40), Image.Resampling.LANCZOS)
    assert np.array_equal(same, np.asarray(expected))


def test_upscale_array_reuses_a_loaded_engine_or_loads_a_file(engine, esrgan):
    image = picture(16, 16)
    by_engine = up.upscale_array(engine, image, 2, tile=0)
    by_path = up.upscale_array(str(esrgan), image, 2, tile=0)
    assert by_engine.shape == (32, 32, 3) and np.array_equal(by_engine, by_path)


def test_the_runner_saves_the_upscale_with_its_recipe(esrgan, tmp_path):
    source = save_png(tmp_path / "source.png", picture(16, 24))
    runner = Runner(Settings(output_dir=str(tmp_path / "out"), device="cpu"))
    request = UpscaleRequest(model=str(esrgan), image=str(source), scale=2, tile=0)
    result = runner.generate(request, Events())
    paths = runner.save(result, None)
    assert len(paths) == 1 and paths[0].is_file()
    with Image.open(paths[0]) as im:
        assert im.size == (48, 32)
    replay = read_recipe(paths[0]).to_request()
    assert isinstance(replay, UpscaleRequest)
    assert replay.replace(image=request.image) == request  # the source may be kept beside
    assert Path(replay.image).read_bytes() == source.read_bytes()


def test_an_unknown_architecture_is_one_sentence_naming_the_file(tmp_path):
    import torch
    from safetensors.torch import save_file

    odd = tmp_path / "upscale" / "mystery.safetensors"
    odd.parent.mkdir()
    save_file({"foo.weight": torch.zeros(4, 4)}, str(odd))
    source = save_png(tmp_path / "s.png", picture(8, 8))
    runner = Runner(Settings(output_dir=str(tmp_path / "out"), device="cpu"))
    with pytest.raises(ModelError) as err:
        runner.generate(UpscaleRequest(model=str(odd), image=str(source), scale=2), Events())
    text = str(err.value)
    assert "mystery.safetensors" in text and "architecture" in text and "\n" not in text
    assert not (tmp_path / "out").exists()


def test_pickles_only_under_the_pickle_policy(tmp_path, esrgan):
    import torch
    from safetensors.torch import load_file

    pth = tmp_path / "ESRGAN" / "tiny.pth"
    pth.parent.mkdir()
    torch.save({"params_ema": load_file(str(esrgan))}, str(pth))
    spec = LoadSpec(str(pth), "cpu", "float32")
    with pytest.raises(ModelError, match="Allow pickled checkpoints"):
        up.UpscaleEngine.load(spec, Settings(), Events())
    loaded = up.UpscaleEngine.load(spec, Settings(allow_pickle=True), Events())
    assert loaded.scale == 2


def test_bad_input_is_one_sentence(tmp_path, engine):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    with pytest.raises(RequestError, match="not a picture"):
        engine.generate(UpscaleRequest(model="x", image=str(not_image), scale=2), Events())
    with pytest.raises(RequestError, match="Scale must be 2 or 4"):
        UpscaleRequest(image="a.png", scale=3).validate()
    with pytest.raises(RequestError, match="overlap"):
        UpscaleRequest(image="a.png", tile=64, tile_overlap=32).validate()
    with pytest.raises(RequestError, match="Choose a picture"):
        UpscaleRequest().validate()
    with pytest.raises(RequestError, match="downscale"):
        up.check_output_size(5000, 100, 4)


def test_spandrel_imports_without_leaving_a_torchvision_stand_in():
    up._spandrel()
    stand_in = sys.modules.get("torchvision")
    assert stand_in is None or getattr(stand_in, "__file__", None)  # a real one, or none


def test_an_image_request_for_an_upscaler_is_refused_before_loading(esrgan):
    from studio.core.requests import ImageRequest

    runner = Runner(Settings(device="cpu"))
    with pytest.raises(RequestError, match="not images"):
        runner.generate(ImageRequest(model=str(esrgan), prompt="x"), Events())


def test_the_key_rules_tell_the_upscaler_layouts_apart():
    from studio.core.catalog.classify import upscaler_layout

    basicsr = {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight",
               "conv_up1.weight", "conv_last.weight"}
    swinir = {"conv_first.weight", "layers.0.residual_group.blocks.0.norm1.weight",
              "conv_after_body.weight"}
    compact = {"body.0.weight", "body.1.weight", "body.2.weight"}
    assert upscaler_layout(basicsr) is families.UPSCALER_ESRGAN
    assert upscaler_layout(swinir) is families.UPSCALER_SWINIR
    assert upscaler_layout(compact) is families.UPSCALER
    assert upscaler_layout({"encoder.down.0.weight", "decoder.up.0.weight"}) is None
